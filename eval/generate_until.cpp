#include "eval/generate_until.h"

#include <algorithm>

#include "core/error.h"
#include "core/progress.h"
#include "data/utf8.h"
#include "eval/generate.h"
#include "eval/metrics.h"

namespace spectra {

namespace {

// np.char.translate(np.char.lower(np.asarray(items)), table without string.punctuation).
std::vector<std::string> numpy_normalize(const std::vector<std::string>& items) {
  size_t width = 0;  // the array's item size, in code points
  for (const std::string& s : items) width = std::max(width, utf8::length(s));
  std::vector<std::string> out;
  for (const std::string& s : items) {
    const std::string lower = py_lower(s);
    std::string kept;
    size_t n = 0;
    for (size_t i = 0; i < lower.size() && n < width; n++) {
      const size_t start = i;
      const char32_t c = utf8::decode(lower, i);
      const bool punctuation = c < 0x80 && std::ispunct(int(c));  // string.punctuation: ASCII
      if (!punctuation) kept.append(lower, start, i - start);
    }
    out.push_back(std::move(kept));
  }
  return out;
}

}  // namespace

bool exact_match(const std::string& prediction, const std::vector<std::string>& answers) {
  const std::vector<std::string> refs = numpy_normalize(answers);
  const std::string pred = numpy_normalize({prediction})[0];
  return std::find(refs.begin(), refs.end(), pred) != refs.end();
}

TaskResult evaluate_generation(const LM& model, const Tokenizer& tokenizer, const Task& task,
                               const EvalOptions& o) {
  Stopwatch clock;
  const int rank = o.group ? o.group->rank() : 0, ranks = o.group ? o.group->size() : 1;
  const int64_t max_length = o.max_length > 0 ? o.max_length : model.config().context;
  const int64_t max_prompt = max_length - o.max_gen_toks;
  if (max_prompt <= 0)
    user_error(
        "--max-gen-toks {} leaves no room for a prompt in the model's {} tokens ({}); "
        "lm-eval refuses this too",
        o.max_gen_toks, max_length, task.name);

  std::vector<size_t> docs;
  std::vector<std::vector<int32_t>> prompts;
  for (size_t d = size_t(rank); d < task.docs.size(); d += size_t(ranks)) {
    std::vector<int32_t> ids = tokenizer.encode(task.docs[d].requests[0].first);
    if (int64_t(ids.size()) > max_prompt) ids.erase(ids.begin(), ids.end() - max_prompt);
    if (ids.empty())
      user_error("{}:{}: the prompt encodes to no tokens", task.path, task.docs[d].line);
    docs.push_back(d);
    prompts.push_back(std::move(ids));
  }
  SampleOptions so;
  so.tokens = o.max_gen_toks;
  so.temperature = 0;
  so.batch = o.batch;
  so.stop = task.until;
  std::vector<std::vector<int32_t>> generated(docs.size());
  ProgressLine progress(o.progress && rank == 0 ? "eval " + task.name : "", double(docs.size()),
                        "docs", o.progress && rank == 0);
  // A batch of prompts at a time (as generate batches them), for the progress line.
  for (size_t first = 0; first < docs.size(); first += size_t(std::max<int64_t>(1, o.batch))) {
    const size_t n = std::min(docs.size() - first, size_t(std::max<int64_t>(1, o.batch)));
    std::vector<std::vector<int32_t>> batch(prompts.begin() + long(first),
                                            prompts.begin() + long(first + n));
    generate(model, &tokenizer, batch, so,
             [&](size_t i, const GeneratedToken& t) { generated[first + i].push_back(t.id); });
    progress.update(double(first + n));
  }
  progress.finish();

  // lm-eval cuts at each stop string in turn, the end-of-text text last.
  std::vector<std::string> cuts = task.until;
  cuts.push_back(tokenizer.decode({prefix_token(tokenizer)}));
  DocValues values(task.docs.size(), {"exact_match"});
  TaskResult out;
  out.task = task.name, out.path = task.path, out.docs = int64_t(task.docs.size());
  for (size_t j = 0; j < docs.size(); j++) {
    const TaskDoc& doc = task.docs[docs[j]];
    std::string text = tokenizer.decode(generated[j], /*skip_special=*/true);
    for (const std::string& cut : cuts)
      if (size_t at = cut.empty() ? std::string::npos : text.find(cut); at != std::string::npos)
        text.resize(at);
    const std::string answer = py_strip(text);
    const bool match = exact_match(answer, doc.answers);
    values.at(docs[j], "exact_match") = match;
    if (o.samples)
      out.samples.push_back({{"doc", docs[j]},
                             {"line", doc.line},
                             {"arguments", doc.requests},
                             {"generation", text},
                             {"answer", answer},
                             {"exact_match", double(match)}});
  }
  values.all_reduce(o.group);
  const std::vector<double> matches = values.column("exact_match");
  out.metrics = {{"exact_match", mean(matches)}};
  out.stderrs["exact_match"] = mean_stderr(matches);
  out.seconds = clock.seconds();
  return out;
}

}  // namespace spectra
