// Shared helpers of the CPU reference kernels: dtype dispatch (the CPU computes in f32 or f64:
// its one capability limit; the arguments are checked before, by kernels/checks.h), element
// conversions and a sum whose order does not depend on the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"

namespace spectra::kernels::cpu {

// Calls fn(T{}) with T = float or double per `t`: the dtypes the CPU backend computes in.
template <typename Fn>
decltype(auto) dispatch_float(const char* op, DType t, Fn&& fn) {
  SPECTRA_CHECK(t == DType::f32 || t == DType::f64,
                "{}: the CPU backend computes in f32 or f64, got {}", op, dtype_name(t));
  if (t == DType::f32) return fn(float{});
  return fn(double{});
}

// Calls fn(T{}) with T the storage type of any float dtype (casts, trits, AdamW's compute copy).
template <typename Fn>
decltype(auto) dispatch_storage(const char* op, DType t, Fn&& fn) {
  SPECTRA_CHECK(is_floating(t), "{}: expected a float dtype, got {}", op, dtype_name(t));
  if (t == DType::bf16) return fn(bf16_t{});
  if (t == DType::f16) return fn(f16_t{});
  if (t == DType::f32) return fn(float{});
  return fn(double{});
}

// Element conversions; the 16-bit types go through float exactly as Tensor::to() does.
inline double widen(float x) { return x; }
inline double widen(double x) { return x; }
inline double widen(bf16_t x) { return bf16_to_float(x); }
inline double widen(f16_t x) { return f16_to_float(x); }
template <typename T>
T narrow(double x) {
  if constexpr (std::is_same_v<T, bf16_t>)
    return float_to_bf16(float(x));
  else if constexpr (std::is_same_v<T, f16_t>)
    return float_to_f16(float(x));
  else
    return T(x);
}

// Rows of a [.., d] tensor (leading dimensions flattened).
inline int64_t rows_of(const Tensor& t) {
  int64_t n = 1;
  for (int64_t i = 0; i + 1 < t.dim(); i++) n *= t.size(i);
  return n;
}

// Σ term(i) over i < n in double. Fixed blocks are summed in parallel and the block sums added
// in order, so the result is bit-identical for any number of threads.
template <typename F>
double ordered_sum(int64_t n, F&& term) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(blocks), 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; b++) {
    double s = 0;
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; i++) s += term(i);
    part[size_t(b)] = s;
  }
  double total = 0;
  for (double p : part) total += p;
  return total;
}

}  // namespace spectra::kernels::cpu
