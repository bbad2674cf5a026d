// Shared helpers of the CPU reference kernels: dtype dispatch (f32 | f64) and argument checks.
#pragma once
#include <cmath>

#include "core/tensor.h"

namespace spectra::kernels::cpu {

// Calls fn(T{}) with T = float or double per `t`; other dtypes are an error naming the op.
template <typename Fn>
auto dispatch_float(const char* op, DType t, Fn&& fn) {
  if (t == DType::f32) return fn(float{});
  if (t == DType::f64) return fn(double{});
  throw Error(fmt::format("{}: the CPU backend computes in f32 or f64, got {}", op, dtype_name(t)));
}

inline void check_same(const char* op, const Tensor& a, const char* an, const Tensor& b,
                       const char* bn) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    throw Error(fmt::format("{}: {} {} and {} {} disagree", op, an, a.str(), bn, b.str()));
}

inline void check_dtype(const char* op, const Tensor& t, const char* name, DType want) {
  if (t.dtype() != want)
    throw Error(fmt::format("{}: {} is {}, expected {}", op, name, t.str(), dtype_name(want)));
}

// Rows of a [.., d] tensor.
inline int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(-1); }

// The accumulation dtype: f64 for f64 inputs, f32 otherwise.
inline DType acc_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace spectra::kernels::cpu
