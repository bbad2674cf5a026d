// Calibration data for post-training quantization: windows of a prepared token file (the
// training data, `spectra prepare`), drawn without repeats in a seeded order from its training
// part. The held-out tail that the trainer validates on and `spectra eval --task perplexity`
// scores (data.val_fraction of the windows the trainer cuts, data/loader.h) is never drawn.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace spectra::quant {

struct CalibrationOptions {
  int64_t samples = 128, seq_len = 2048;
  uint64_t seed = 0;
  // Where the held-out tail starts: the trainer's window length and validation fraction.
  int64_t train_seq_len = 2048;
  double val_fraction = 0;
  std::string tokenizer_sha256;  // the model's tokenizer: the file must be prepared with it
  int64_t vocab_size = 0;        // the model's vocabulary
};

// i32 [samples·seq_len] on the host, sample after sample. UserError naming the file when it was
// prepared with another tokenizer or holds fewer than `samples` windows before its tail.
Tensor calibration_tokens(const std::string& path, const CalibrationOptions& options);

}  // namespace spectra::quant
