// Log-likelihood requests, scored as lm-evaluation-harness (0.4) scores them with its Hugging
// Face backend (HFLM), so `spectra eval` and `lm_eval --model hf` agree on the same model:
//
//   auto [ctx, cont] = encode_pair(tok, "Question: ...\nAnswer:", " Paris", prefix);
//   Scorer scorer(model, /*batch=*/8);
//   std::vector<Loglikelihood> r = scorer.score({{ctx, cont}, ...});
//   // r[i].logprob = Σ log p(cont_j | ctx, cont_<j), r[i].greedy = every cont_j is the argmax
//
// Each request's tokens (context then continuation) are cut to their last context+1 (the
// model's window) and the last one dropped; the logits of the final len(continuation) positions
// score it. Requests run in right-padded batches (causal attention: padding never reaches a
// real position), longest first. Under tensor parallelism (the model's TP group) every rank of
// the group scores the same requests, gathering the scored rows of the vocabulary-parallel
// logits: a collective over that group.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "layers/lm.h"

namespace spectra {

struct LoglikelihoodRequest {
  std::vector<int32_t> context, continuation;  // continuation non-empty
};

struct Loglikelihood {
  double logprob = 0;   // summed over the continuation's tokens
  bool greedy = false;  // each continuation token is its position's argmax
  int64_t tokens = 0;   // continuation tokens scored
};

// HFLM._encode_pair: whitespace ending the context moves to the front of the continuation;
// the continuation's tokens are those of encode(context + continuation) after the context's.
// An empty context becomes the one token `prefix_token` (HFLM.prefix_token_id: bos, else eos),
// or the continuation's first token when that is the prefix token.
LoglikelihoodRequest encode_pair(const Tokenizer& tok, std::string context,
                                 std::string continuation, int32_t prefix_token);

// The disjoint windows of lm-eval's loglikelihood_rolling (get_rolling_token_windows with
// context_len 1, then make_disjoint_window) over a document's tokens for a model of context
// `max_length` L: the first window predicts tokens[0, L) from the prefix token, each next one the
// following (up to) L tokens, its input the L tokens before its last.
std::vector<LoglikelihoodRequest> rolling_windows(const std::vector<int32_t>& tokens,
                                                  int32_t prefix_token, int64_t max_length);

// The logits of rows [row0, row0 + n) over the whole vocabulary, as doubles. Under tensor
// parallelism each rank holds a block of every row (the vocabulary-parallel head): the rows are
// gathered over the TP group, every rank of which must call this alike.
std::vector<double> vocab_rows(const LM& model, const Tensor& logits, int64_t row0, int64_t n);

class Scorer {
 public:
  // max_length 0: the model's context.
  Scorer(const LM& model, int64_t batch, int64_t max_length = 0);
  // Progress on stderr for long work when `label` is non-empty.
  std::vector<Loglikelihood> score(const std::vector<LoglikelihoodRequest>& requests,
                                   const std::string& label = "") const;

 private:
  const LM& model_;
  int64_t batch_, max_length_;
};

}  // namespace spectra
