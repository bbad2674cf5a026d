// Embedding lookup and its scatter-add backward (rows of one id summed in order of n).
#include <cstring>

#include "kernels/cpu/common.h"
#include "kernels/embedding.h"

namespace spectra::kernels::cpu {

namespace {
void check(const char* op, const Tensor& ids, const Tensor& table, const Tensor& rows) {
  check_dtype(op, ids, "ids", DType::i32);
  if (table.dim() != 2 || rows.numel() != ids.numel() * table.size(1) || rows.dtype() != table.dtype())
    throw Error(fmt::format("{}: ids {}, table {}, rows {} disagree", op, ids.str(), table.str(), rows.str()));
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, int64_t off, Tensor& out) {
  check("embedding_forward", ids, table, out);
  const int64_t n = ids.numel(), v = table.size(0), d = table.size(1);
  dispatch_float("embedding_forward", table.dtype(), [&](auto z) {
    using T = decltype(z);
    const int32_t* id = ids.data<int32_t>();
    const T* tp = table.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      int64_t row = int64_t(id[i]) - off;
      if (row >= 0 && row < v)
        std::memcpy(op + i * d, tp + row * d, sizeof(T) * size_t(d));
      else
        std::memset(op + i * d, 0, sizeof(T) * size_t(d));
    }
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, int64_t off, Tensor& dtable) {
  check("embedding_backward", ids, dtable, dout);
  const int64_t n = ids.numel(), v = dtable.size(0), d = dtable.size(1);
  dispatch_float("embedding_backward", dtable.dtype(), [&](auto z) {
    using T = decltype(z);
    const int32_t* id = ids.data<int32_t>();
    const T* dp = dout.data<T>();
    T* tp = dtable.data<T>();
    for (int64_t i = 0; i < n; i++) {
      int64_t row = int64_t(id[i]) - off;
      if (row < 0 || row >= v) continue;
      for (int64_t k = 0; k < d; k++) tp[row * d + k] += dp[i * d + k];
    }
  });
}

}  // namespace spectra::kernels::cpu
