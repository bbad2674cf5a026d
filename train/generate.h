// Sampling text from a model: temperature and top-k over the last position's logits. Text maps
// to tokens through the model's tokenizer, or byte by byte for byte-level models.
#pragma once
#include <functional>
#include <string>

#include "data/tokenizer.h"
#include "layers/lm.h"

namespace spectra {

struct SampleOptions {
  int64_t tokens = 200;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 40;        // 0: the whole vocabulary
  uint64_t seed = 1;
};

struct GeneratedToken {
  int32_t id;
  std::string bytes;  // its exact bytes (a character may span two tokens)
  double logprob;     // log p(id | context) under the model, over all its vocabulary rows
};

// Continues `prompt` by up to opts.tokens tokens, stopping early at a special token (the
// end-of-text a BPE model learned between documents); calls on_token with each new token if
// given. `tokenizer` null: the model is byte-level.
std::string generate(const LM& model, const Tokenizer* tokenizer, const std::string& prompt,
                     const SampleOptions& opts,
                     const std::function<void(const GeneratedToken&)>& on_token = {});

}  // namespace spectra
