// lm-eval's generate_until tasks (TriviaQA) on the KV-cached generator (eval/generate.h), as its
// Hugging Face backend runs them at --batch_size 1:
//
//   tokens  = encode(context), the last (max_length − max_gen_toks) kept
//   output  = greedy continuation of at most max_gen_toks tokens, decoded (special tokens
//             skipped), cut at the first of the task's stop strings and the end-of-text text
//   answer  = output.strip()
//   exact_match = any alias equals the answer, both lower-cased and without ASCII punctuation
//
// (At a larger batch size lm-eval pads the prompts and lets a shorter one generate up to the
// batch's longest prompt minus its own more tokens; spectra gives every document the same
// budget.)
#pragma once
#include <string>
#include <vector>

#include "eval/evaluate.h"

namespace spectra {

TaskResult evaluate_generation(const LM& model, const Tokenizer& tokenizer, const Task& task,
                               const EvalOptions& options);

// lm-eval's exact_match with ignore_case and ignore_punctuation over one prediction and its
// answers: numpy's str.lower() (whose output keeps each array's item size: a string that grows,
// e.g. by U+0130, is cut to the array's longest input) and the removal of string.punctuation.
bool exact_match(const std::string& prediction, const std::vector<std::string>& answers);

}  // namespace spectra
