// Elementwise ops, casts between float dtypes, and the sum of squares (in f64, fixed order) behind
// the global gradient norm.
#include "kernels/elementwise.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_float("add", a.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *x = a.data<T>(), *y = b.data<T>();
    T* o = out.data<T>();
    const int64_t n = a.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
  });
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  dispatch_float("axpy", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) yp[i] += T(alpha) * xp[i];
  });
}

void scale(Tensor& x, float alpha) {
  dispatch_float("scale", x.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = x.data<T>();
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) p[i] *= T(alpha);
  });
}

void cast(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  dispatch_storage("cast", src.dtype(), [&](auto sz) {
    using S = decltype(sz);
    dispatch_storage("cast", dst.dtype(), [&](auto dz) {
      using D = decltype(dz);
      const S* s = src.data<S>();
      D* d = dst.data<D>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) d[i] = narrow<D>(widen(s[i]));
    });
  });
}

double sum_squares(const std::vector<Tensor>& xs, bool* nonfinite) {
  double total = 0;
  bool bad = false;
  for (const Tensor& x : xs)
    dispatch_storage("sum_squares", x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* p = x.data<T>();
      const double s = ordered_sum(x.numel(), [&](int64_t i) { return widen(p[i]) * widen(p[i]); });
      total += s;
      // Squares are never negative, so an inf or NaN element makes s inf or NaN: only then scan
      // (s can also overflow from huge but finite f64 values).
      if (!std::isfinite(s))
        for (int64_t i = 0; i < x.numel() && !bad; i++) bad = !std::isfinite(widen(p[i]));
    });
  if (nonfinite) *nonfinite = bad;
  return total;
}

}  // namespace spectra::kernels::cpu
