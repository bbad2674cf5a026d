#include "data/byte_corpus.h"

#include "core/rng.h"

namespace spectra {

ByteCorpus::ByteCorpus(std::string text, double val_fraction) : text_(std::move(text)) {
  split_ = int64_t(double(text_.size()) * (1.0 - val_fraction));
}

TokenBatch ByteCorpus::windows(const std::vector<int64_t>& starts, int64_t seq) const {
  int64_t b = int64_t(starts.size());
  TokenBatch out{Tensor::empty({b * seq}, DType::i32), Tensor::empty({b * seq}, DType::i32), b,
                 seq};
  int32_t* ids = out.ids.data<int32_t>();
  int32_t* tg = out.targets.data<int32_t>();
  for (int64_t i = 0; i < b; i++)
    for (int64_t t = 0; t < seq; t++) {
      ids[i * seq + t] = static_cast<unsigned char>(text_[size_t(starts[i] + t)]);
      tg[i * seq + t] = static_cast<unsigned char>(text_[size_t(starts[i] + t + 1)]);
    }
  return out;
}

TokenBatch ByteCorpus::train_batch(uint64_t seed, uint64_t index, int64_t batch,
                                   int64_t seq) const {
  int64_t span = split_ - seq - 1;
  if (span <= 0)
    user_error("the training text ({} bytes) is shorter than one window of {}", split_, seq + 1);
  std::vector<int64_t> starts(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; i++) {
    Philox4 r = philox4x32(index * uint64_t(batch) + uint64_t(i), seed);
    starts[i] = int64_t(((uint64_t(r.x[0]) << 32) | r.x[1]) % uint64_t(span));
  }
  return windows(starts, seq);
}

TokenBatch ByteCorpus::val_batch(uint64_t index, int64_t batch, int64_t seq) const {
  int64_t n = val_bytes() / (seq + 1);
  if (n <= 0)
    user_error("the validation text ({} bytes) is shorter than one window of {}", val_bytes(),
               seq + 1);
  std::vector<int64_t> starts(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; i++)
    starts[i] = split_ + int64_t((index * uint64_t(batch) + uint64_t(i)) % uint64_t(n)) * (seq + 1);
  return windows(starts, seq);
}

}  // namespace spectra
