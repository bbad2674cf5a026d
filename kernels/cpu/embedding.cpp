// Embedding lookup (zero rows for ids outside this shard) and its scatter-add backward.
#include <cstring>

#include "kernels/cpu/common.h"
#include "kernels/embedding.h"

namespace spectra::kernels::cpu {

void embedding_forward(const Tensor& ids, const Tensor& table, int64_t off, Tensor& out) {
  const int64_t n = ids.numel(), v = table.size(0), d = table.size(1);
  dispatch_float("embedding_forward", table.dtype(), [&](auto z) {
    using T = decltype(z);
    const int32_t* id = ids.data<int32_t>();
    const T* tp = table.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const int64_t row = int64_t(id[i]) - off;
      if (row >= 0 && row < v)
        std::memcpy(op + i * d, tp + row * d, sizeof(T) * size_t(d));
      else
        std::memset(op + i * d, 0, sizeof(T) * size_t(d));
    }
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, int64_t off, Tensor& dtable) {
  const int64_t n = ids.numel(), v = dtable.size(0), d = dtable.size(1);
  dispatch_float("embedding_backward", dout.dtype(), [&](auto z) {
    using T = decltype(z);
    const int32_t* id = ids.data<int32_t>();
    const T* dp = dout.data<T>();
    T* tp = dtable.data<T>();
    // Each thread owns a block of columns and visits n in order: every element of dtable
    // receives its contributions in the same order whatever the thread count.
    constexpr int64_t kCols = 32;
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < d; c0 += kCols) {
      const int64_t c1 = std::min(d, c0 + kCols);
      for (int64_t i = 0; i < n; i++) {
        const int64_t row = int64_t(id[i]) - off;
        if (row < 0 || row >= v) continue;
        T* dst = tp + row * d;
        const T* src = dp + i * d;
        for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
      }
    }
  });
}

}  // namespace spectra::kernels::cpu
