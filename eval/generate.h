// Sampling text from a model: temperature and top-k over the last position's logits, with a
// key/value cache (layers/kv_cache.h) so each new token costs one position, not the whole
// context. Several prompts generate together: each step runs one ragged batch holding every
// unfinished sequence's new token (or, after a context shift, its re-read window).
//
// The context window: a sequence attends to at most config.context positions. When the next
// token would not fit, the window drops its oldest tokens and keeps the newest context/2 (at
// least one), which are read again from position 0. The cached and uncached paths follow this
// same rule, so greedy decoding gives the same tokens either way.
//
// Under tensor parallelism (a model split over a TP group) every rank of the group calls this
// alike: each token reruns the window uncached and the last row's vocabulary-parallel logits
// are gathered, so every rank picks the same token.
//
// Text maps to tokens through the model's tokenizer, or byte by byte for byte-level models.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "layers/lm.h"

namespace spectra {

struct SampleOptions {
  int64_t tokens = 200;      // new tokens at most per prompt
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 40;        // 0: the whole vocabulary
  uint64_t seed = 1;         // prompt i draws from stream (seed, i): batching does not matter
  bool cache = true;         // false: rerun the whole window for every token (the reference)
  int64_t batch = 8;         // prompts generated together
  // A prompt also ends once its continuation's bytes contain one of these (lm-eval's `until`).
  std::vector<std::string> stop;
};

struct GeneratedToken {
  int32_t id;
  std::string bytes;  // its exact bytes (a character may span two tokens)
  double logprob;     // log p(id | context) under the model, over all its vocabulary rows
};

// Continues each prompt by up to opts.tokens tokens, stopping a prompt early at a special
// token (the end-of-text a BPE model learned between documents, which is not emitted). Calls
// on_token(prompt index, token) with each new token if given. `tokenizer` null: byte-level.
std::vector<std::string> generate(
    const LM& model, const Tokenizer* tokenizer, const std::vector<std::string>& prompts,
    const SampleOptions& opts,
    const std::function<void(size_t, const GeneratedToken&)>& on_token = {});

// The same from prompts already tokenized (each non-empty).
std::vector<std::string> generate(
    const LM& model, const Tokenizer* tokenizer, const std::vector<std::vector<int32_t>>& prompts,
    const SampleOptions& opts,
    const std::function<void(size_t, const GeneratedToken&)>& on_token = {});

// One prompt.
std::string generate(const LM& model, const Tokenizer* tokenizer, const std::string& prompt,
                     const SampleOptions& opts,
                     const std::function<void(const GeneratedToken&)>& on_token = {});

}  // namespace spectra
