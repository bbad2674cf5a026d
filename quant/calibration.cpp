#include "quant/calibration.h"

#include <vector>

#include "core/error.h"
#include "data/loader.h"
#include "data/permutation.h"
#include "data/token_file.h"

namespace spectra::quant {

Tensor calibration_tokens(const std::string& path, const CalibrationOptions& o) {
  std::vector<TokenFile> files;
  for (const std::string& f : source_files(path)) {
    files.emplace_back(f);
    const TokenFileMeta& m = files.back().meta();
    if (!o.tokenizer_sha256.empty() && m.tokenizer_sha256 != o.tokenizer_sha256)
      user_error(
          "{}: prepared with tokenizer sha256 {}, the model's tokenizer is {}; calibrate "
          "on data prepared with the model's tokenizer",
          f, m.tokenizer_sha256.substr(0, 16), o.tokenizer_sha256.substr(0, 16));
    if (m.vocab_size > o.vocab_size)
      user_error("{}: its tokenizer has {} tokens, more than the model's vocabulary of {}", f,
                 m.vocab_size, o.vocab_size);
  }
  // The trainer's windows (data/loader.h), to find the first held-out token.
  std::vector<std::pair<size_t, int64_t>> train_windows;
  for (size_t f = 0; f < files.size(); f++)
    for (int64_t w = 0; w < (files[f].num_tokens() - 1) / o.train_seq_len; w++)
      train_windows.push_back({f, w * o.train_seq_len});
  const int64_t held_out = validation_windows(int64_t(train_windows.size()), o.val_fraction);
  std::pair<size_t, int64_t> tail = {files.size(), 0};
  if (held_out > 0) tail = train_windows[train_windows.size() - size_t(held_out)];

  std::vector<std::pair<size_t, int64_t>> windows;  // (file, first token) before the tail
  int64_t usable = 0;
  for (size_t f = 0; f < files.size(); f++) {
    const int64_t end = f < tail.first ? files[f].num_tokens() : f == tail.first ? tail.second : 0;
    usable += end;
    for (int64_t s = 0; s + o.seq_len <= end; s += o.seq_len) windows.push_back({f, s});
  }
  if (int64_t(windows.size()) < o.samples)
    user_error(
        "{}: its training part holds {} tokens, {} windows of {}; {} calibration samples "
        "need {} tokens (lower --samples or --seq-len, or calibrate on more data)",
        path, usable, windows.size(), o.seq_len, o.samples, o.samples * o.seq_len);
  Permutation order(windows.size(), o.seed ^ 0x63616c6962ull);  // "calib"
  Tensor out = Tensor::empty({o.samples * o.seq_len}, DType::i32);
  for (int64_t i = 0; i < o.samples; i++) {
    const auto [f, start] = windows[size_t(order(uint64_t(i)))];
    files[f].read(start, o.seq_len, out.data<int32_t>() + i * o.seq_len);
  }
  return out;
}

}  // namespace spectra::quant
