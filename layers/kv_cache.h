// The key/value cache of incremental inference: for every layer, the rotated keys and the values
// of each sequence's past positions, so a new token attends to them without recomputing them.
//
//   KVCache cache(model.config(), /*slots=*/4, /*capacity=*/model.config().context,
//                 model.compute_dtype(), model.device());
//   Tensor logits = model.logits_cached(ids, {{slot, n}, ...}, cache);  // advances the slots
//
// A slot is one sequence; its keys of layer l are rows [slot·capacity, slot·capacity + length)
// of keys(l), [slots·capacity, heads, head_dim] in the model's compute dtype.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "layers/model_config.h"

namespace spectra {

class KVCache {
 public:
  // heads: this rank's attention heads (config.heads without tensor parallelism).
  KVCache(const ModelConfig& cfg, int64_t slots, int64_t capacity, DType dtype, Device device,
          int64_t heads = 0);

  int64_t slots() const { return int64_t(length_.size()); }
  int64_t capacity() const { return capacity_; }
  int64_t length(int64_t slot) const { return length_[size_t(slot)]; }
  void reset(int64_t slot) { length_[size_t(slot)] = 0; }

  // Stores `n` new positions ([n, heads, head_dim]) of layer `layer` after the slot's current
  // length and returns all its keys and values so far as [1, length + n, heads, head_dim].
  // The slot's length advances only through advance(), after every layer has appended.
  std::pair<Tensor, Tensor> append(int64_t layer, int64_t slot, const Tensor& k, const Tensor& v);
  void advance(int64_t slot, int64_t n);

 private:
  int64_t capacity_;
  std::vector<Tensor> k_, v_;  // per layer
  std::vector<int64_t> length_;
};

// One sequence's share of a ragged batch: `tokens` consecutive rows of the batch continue
// cache slot `slot` from its current length.
struct CacheSegment {
  int64_t slot = 0;
  int64_t tokens = 0;
};

}  // namespace spectra
