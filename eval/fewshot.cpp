#include "eval/fewshot.h"

#include <fmt/format.h>

#include "core/error.h"
#include "eval/python_random.h"

namespace spectra {

FewshotSource fewshot_source(const std::string& task) {
  task_type(task);  // an unknown name is a UserError
  if (task == "perplexity" || task == "truthfulqa_mc1") return {"", false, false, false, true};
  if (task == "mmlu_continuation") return {"dev", false, false, true, false};
  if (task == "lambada" || task == "lambada_openai" || task == "crows_pairs_english" ||
      task == "multiple_choice")  // no training split: lm-eval falls back to the test split
    return {"test", true, false, false, false};
  // No test split in lm-eval's configuration (validation is evaluated): fewshot_split and
  // test_split are both null, equal, so the document itself is drawn around.
  const bool drops = task == "hellaswag" || task == "piqa" || task == "winogrande" ||
                     task == "boolq" || task == "triviaqa";
  return {"train", false, drops, false, false};
}

namespace {

// The pool's documents as lm-eval's ContextSampler.sample returns them for one document.
std::vector<const TaskDoc*> draw(PythonRandom& rnd, const std::vector<const TaskDoc*>& pool,
                                 const TaskDoc& doc, int64_t shots, bool drops_document) {
  auto pick = [&](const std::vector<const TaskDoc*>& from, size_t k) {
    std::vector<const TaskDoc*> out;
    for (size_t i : rnd.sample(from.size(), k)) out.push_back(from[i]);
    return out;
  };
  const size_t n = size_t(shots);
  if (!drops_document) return pick(pool, n);
  std::vector<const TaskDoc*> out;
  for (const TaskDoc* d : pick(pool, n + 1))
    if (d->record != doc.record && out.size() < n) out.push_back(d);
  if (out.size() < n) {  // the pool holds the document more than once: draw from the others
    std::vector<const TaskDoc*> others;
    for (const TaskDoc* d : pool)
      if (d->record != doc.record) others.push_back(d);
    if (others.size() < n)
      user_error("line {}: --num-fewshot {}: the few-shot file holds only {} other documents",
                 doc.line, shots, others.size());
    out = pick(others, n);
  }
  return out;
}

}  // namespace

void add_fewshot(Task& task, const Task& pool, int64_t shots, uint64_t seed) {
  const FewshotSource source = fewshot_source(task.name);
  if (shots <= 0 || source.zero_shot) return;
  std::vector<const TaskDoc*> all;
  for (const TaskDoc& d : pool.docs) all.push_back(&d);
  const size_t needed = size_t(shots) + (source.drops_document ? 1 : 0);
  if (!source.first_n && all.size() < needed)
    user_error(
        "{}: --num-fewshot {} for task '{}' draws {} examples{} from this file's {} "
        "documents; give a larger --fewshot-data file or fewer shots",
        pool.path, shots, task.name, needed,
        source.drops_document ? " (the document itself is left out)" : "", all.size());
  PythonRandom rnd(seed);
  for (TaskDoc& doc : task.docs) {
    std::vector<const TaskDoc*> examples;
    if (source.first_n) {  // the subject's first examples, in file order
      for (const TaskDoc* d : all)
        if (d->subject == doc.subject && int64_t(examples.size()) < shots) examples.push_back(d);
      if (int64_t(examples.size()) < shots)
        user_error("{}: --num-fewshot {}: subject '{}' has {} examples in this file", pool.path,
                   shots, doc.subject, examples.size());
    } else {
      examples = draw(rnd, all, doc, shots, source.drops_document);
    }
    std::string text;
    for (const TaskDoc* e : examples) text += e->example + "\n\n";
    for (auto& request : doc.requests) request.first.insert(doc.description.size(), text);
  }
}

void add_fewshot(Task& task, const std::string& examples, int64_t shots, uint64_t seed,
                 const std::string& how_to_give) {
  const FewshotSource source = fewshot_source(task.name);
  if (shots <= 0 || source.zero_shot) return;
  if (examples.empty() && !source.own_file)
    user_error(
        "{} shots: task '{}' takes its examples from the dataset's {} split "
        "(lm-eval's configuration): {}",
        shots, task.name, source.split, how_to_give);
  add_fewshot(task, load_task(task.name, examples.empty() ? task.path : examples), shots, seed);
}

}  // namespace spectra
