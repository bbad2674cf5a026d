// Running a task on a model: its documents become log-likelihood requests (eval/tasks.h,
// eval/loglikelihood.h), are scored in batches, and reduce to lm-evaluation-harness's metrics:
//
//   multiple_choice   acc       mean of [argmax_i ll_i == gold]
//                     acc_norm  mean of [argmax_i ll_i / chars_i == gold]
//   loglikelihood     acc       mean of [the target is the greedy continuation]
//   (lambada)         perplexity exp(-mean over documents of the target's ll)
//   perplexity        token_perplexity, word_perplexity, byte_perplexity: exp(-Σll / Σcount);
//   (text)            bits_per_byte = -Σll / Σbytes / ln 2 (words: Python's re.split(r"\s+"))
//   generate_until    exact_match: mean of [the cut, stripped continuation equals an answer]
//   (triviaqa)        (eval/generate_until.h)
//   mmlu_continuation acc over all documents and per lm-eval group (acc_stem, acc_other,
//                     acc_social_sciences, acc_humanities: weighted by size = over their
//                     documents); per subject acc and acc_norm in TaskResult::subtasks
//   perplexity        loss (nats per token) and token_perplexity = exp(loss) over the windows
//   (token file)      the trainer validates on (train.seq_len + 1 tokens every seq_len; the held-
//                     out tail of data.val_fraction, or all); bits_per_byte from the file's bytes
//
// With each mean its standard error as lm-eval computes it (eval/metrics.h); a metric lm-eval
// gives none (the perplexities of text) has none.
//
//   Task task = load_task("arc_easy", "arc.jsonl");
//   TaskResult r = evaluate(model, &tokenizer, task, {});
//   r.metric("acc");
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "dist/group.h"
#include "eval/tasks.h"
#include "layers/lm.h"

namespace spectra {

struct EvalOptions {
  int64_t batch = 8;           // sequences per forward pass
  int64_t max_length = 0;      // tokens a request may use (0: the model's context)
  int64_t max_gen_toks = 256;  // generate_until: new tokens at most (lm-eval's default)
  bool progress = true;        // a progress line on stderr
  bool samples = false;        // keep each document's scores (TaskResult::samples)
  // Token files: window length (0: the recipe's train.seq_len) and which windows.
  int64_t seq_len = 0;
  bool val_split = true;  // the held-out tail only (else every window)
  double val_fraction = 0.01;
  // Documents split over the group's ranks (rank r scores documents r, r + size, ...) and
  // the sums all-reduced: every rank returns the same metrics. Null: this process alone.
  const dist::Group* group = nullptr;
};

struct TaskResult {
  std::string task, path;
  int64_t docs = 0;
  std::vector<std::pair<std::string, double>> metrics;  // in display order
  std::map<std::string, double> stderrs;             // lm-eval's standard errors, where it has one
  nlohmann::json samples = nlohmann::json::array();  // per document, when asked for
  nlohmann::json subtasks = nlohmann::json::object();  // MMLU: {subject: {docs, acc, acc_norm}}
  double seconds = 0;

  double metric(const std::string& name) const;  // NaN if absent
  nlohmann::json to_json() const;  // {task, data, docs, metrics: {...}, [subtasks,] seconds}
};

// `tokenizer` is needed for every text task (a byte-level model has none: UserError).
TaskResult evaluate(const LM& model, const Tokenizer* tokenizer, const Task& task,
                    const EvalOptions& options);

// Perplexity over a prepared token file (spectra prepare); `tokenizer_sha256` ("" skips the
// check) must match the file's.
TaskResult evaluate_token_file(const LM& model, const std::string& path,
                               const std::string& tokenizer_sha256, const EvalOptions& options);

// The token id lm-eval puts before a document or an empty context (HFLM.prefix_token_id):
// the tokenizer's <|endoftext|> (GPT-NeoX's bos = eos), else 0.
int32_t prefix_token(const Tokenizer& tokenizer);

}  // namespace spectra
