// The byte-level corpus: text split into a training part and a held-out validation tail, each
// byte a token (vocabulary 256). Training windows of seq_len+1 bytes start at offsets drawn from
// a counter-based RNG keyed by the seed, so batch i of a run is a pure function of (seed, i):
// the loader's whole state is the batch index.
#pragma once
#include <string>

#include "core/tensor.h"

namespace spectra {

struct TokenBatch {
  Tensor ids;      // [B*T] i32, host
  Tensor targets;  // [B*T] i32, host: ids shifted by one
  int64_t batch = 0, seq = 0;
};

class ByteCorpus {
 public:
  ByteCorpus(std::string text, double val_fraction);
  int64_t train_bytes() const { return split_; }
  int64_t val_bytes() const { return int64_t(text_.size()) - split_; }

  // Training batch `index` of the stream `seed`: `batch` windows at random offsets.
  TokenBatch train_batch(uint64_t seed, uint64_t index, int64_t batch, int64_t seq) const;
  // Validation batch `index`: consecutive windows through the held-out tail (wrapping around).
  TokenBatch val_batch(uint64_t index, int64_t batch, int64_t seq) const;

 private:
  TokenBatch windows(const std::vector<int64_t>& starts, int64_t seq) const;
  std::string text_;
  int64_t split_;
};

}  // namespace spectra
