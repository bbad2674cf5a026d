// The cache key of model.attention: cudnn (kernels/cuda/cudnn_attention.cpp): one cuDNN SDPA graph
// is built, planned and cached per key, then reused for every call of that shape. No cuDNN header
// here, so CPU tests can check the key (tests/test_cudnn_key.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/dtype.h"

namespace spectra::kernels::cuda {

struct CudnnGraphKey {
  DType dtype = DType::bf16;  // of q, k, v, o (and of the gradients)
  int64_t b = 0, h = 0, tq = 0, tk = 0, dh = 0;
  bool causal = true;
  bool backward = false;
  int device = 0;  // the CUDA device index the graph and its handle belong to

  bool operator==(const CudnnGraphKey&) const = default;
};

struct CudnnGraphKeyHash {
  size_t operator()(const CudnnGraphKey& k) const noexcept {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    auto mix = [&h](uint64_t v) {  // splitmix64 of (h ^ v): every field changes every bit
      uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      h = z ^ (z >> 31);
    };
    mix(uint64_t(k.dtype));
    mix(uint64_t(k.b));
    mix(uint64_t(k.h));
    mix(uint64_t(k.tq));
    mix(uint64_t(k.tk));
    mix(uint64_t(k.dh));
    mix(uint64_t(k.causal) | uint64_t(k.backward) << 1);
    mix(uint64_t(uint32_t(k.device)));
    return size_t(h);
  }
};

// Defined in kernels/cuda/cudnn_attention.cpp (CUDA builds only):
// Whether this build compiled the cuDNN path (the frontend headers were found at configure time).
bool cudnn_attention_built();
// The number of SDPA graphs built so far in this process (a cached shape builds none).
size_t cudnn_attention_graphs();
// Loads libcudnn (once), creates the handle of the current device and returns cudnnGetVersion()
// (e.g. 91900). Throws a UserError naming what it looked for when either step fails.
size_t cudnn_runtime_version();

}  // namespace spectra::kernels::cuda
