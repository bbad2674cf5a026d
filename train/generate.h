// Sampling text from a byte-level model: temperature and top-k over the last position's logits.
#pragma once
#include <functional>
#include <string>

#include "layers/lm.h"

namespace spectra {

struct SampleOptions {
  int64_t tokens = 200;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 40;        // 0: the whole vocabulary
  uint64_t seed = 1;
};

// Continues `prompt` (bytes) by opts.tokens bytes; calls on_token with each new piece if given.
std::string generate(const LM& model, const std::string& prompt, const SampleOptions& opts,
                     const std::function<void(const std::string&)>& on_token = {});

}  // namespace spectra
