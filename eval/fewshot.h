// Few-shot contexts as lm-evaluation-harness 0.4.13 builds them (`--num_fewshot N`, its
// default `--seed` 1234 for the sampler):
//
//   context = description + example_1 + "\n\n" + ... + example_N + "\n\n" + the document's prompt
//
// where an example is another document's prompt, the target delimiter and its gold answer
// (TaskDoc::example). Which documents, per task (FewshotSource): drawn with Python's
// random.Random(seed).sample from the split lm-eval's task configuration names (its training
// split; the evaluated file itself where the dataset has none), one generator for the whole
// task, the documents in order; where that split is the evaluated one by configuration
// (fewshot_split == test_split), lm-eval draws N + 1 and drops the document itself. MMLU takes
// the first N development questions of the document's subject. Perplexity (rolling windows)
// ignores the examples, and truthfulqa_mc1's configuration fixes zero shots, as in lm-eval.
//
//   Task pool = load_task("arc_easy", "arc_train.jsonl");
//   add_fewshot(task, pool, 5);
#pragma once
#include <cstdint>
#include <string>

#include "eval/tasks.h"

namespace spectra {

struct FewshotSource {
  std::string split;            // where lm-eval takes the examples from: "train", "dev", "test"
  bool own_file = false;        // that split is the evaluated one (lambada, crows_pairs, generic)
  bool drops_document = false;  // samples N + 1 and drops the evaluated document
  bool first_n = false;         // MMLU: the first N of the subject, no sampling
  bool zero_shot = false;       // examples never added (perplexity, truthfulqa_mc1)
};

FewshotSource fewshot_source(const std::string& task);

constexpr uint64_t kFewshotSeed = 1234;  // lm-eval's default fewshot_random_seed

// Puts `shots` examples from `pool` (the FewshotSource split's file, loaded as the same task)
// into every context of `task`. UserError when the pool holds too few examples.
void add_fewshot(Task& task, const Task& pool, int64_t shots, uint64_t seed = kFewshotSeed);

// The same from a file: `examples` ("" where the examples come from the task's own file; else a
// UserError that ends with `how_to_give`, saying where the caller takes that file from).
// Nothing for zero shots or a zero-shot task.
void add_fewshot(Task& task, const std::string& examples, int64_t shots, uint64_t seed,
                 const std::string& how_to_give);

}  // namespace spectra
