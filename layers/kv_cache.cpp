#include "layers/kv_cache.h"

namespace spectra {

KVCache::KVCache(const ModelConfig& cfg, int64_t slots, int64_t capacity, DType dtype,
                 Device device, int64_t heads)
    : capacity_(capacity), length_(size_t(slots), 0) {
  SPECTRA_CHECK(slots > 0 && capacity > 0, "KVCache: {} slots of capacity {}", slots, capacity);
  const Shape shape{slots * capacity, heads > 0 ? heads : cfg.heads, cfg.head_dim()};
  for (int64_t l = 0; l < cfg.layers; l++) {
    k_.push_back(Tensor::empty(shape, dtype, device));
    v_.push_back(Tensor::empty(shape, dtype, device));
  }
}

std::pair<Tensor, Tensor> KVCache::append(int64_t layer, int64_t slot, const Tensor& k,
                                          const Tensor& v) {
  const int64_t n = k.size(0), len = length(slot), first = slot * capacity_;
  SPECTRA_CHECK(len + n <= capacity_, "KVCache: slot {} holds {} of {} positions, {} more asked",
                slot, len, capacity_, n);
  const Tensor& ks = k_[size_t(layer)];
  const Tensor& vs = v_[size_t(layer)];
  ks.slice(first + len, first + len + n).copy_from(k);
  vs.slice(first + len, first + len + n).copy_from(v);
  Shape shape{1, len + n, ks.size(1), ks.size(2)};
  return {ks.slice(first, first + len + n).view(shape),
          vs.slice(first, first + len + n).view(shape)};
}

void KVCache::advance(int64_t slot, int64_t n) {
  SPECTRA_CHECK(length(slot) + n <= capacity_, "KVCache: slot {} overflows", slot);
  length_[size_t(slot)] += n;
}

}  // namespace spectra
