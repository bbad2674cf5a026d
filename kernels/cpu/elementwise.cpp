// Elementwise ops and the sum of squares (in f64) used for the global gradient norm.
#include "core/half.h"
#include "kernels/cpu/common.h"
#include "kernels/elementwise.h"

namespace spectra::kernels::cpu {

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  check_same("add", a, "a", b, "b");
  check_same("add", a, "a", out, "out");
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
  check_same("axpy", x, "x", y, "y");
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
  if (src.shape() != dst.shape() || !is_floating(src.dtype()) || !is_floating(dst.dtype()))
    throw Error(fmt::format("cast: {} to {}", src.str(), dst.str()));
  const size_t ss = dtype_size(src.dtype()), ds = dtype_size(dst.dtype());
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
  const int64_t n = src.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    store_from_double(d + size_t(i) * ds, dst.dtype(), load_as_double(s + size_t(i) * ss, src.dtype()));
}

double sum_squares(const std::vector<Tensor>& xs, bool* nonfinite) {
  double total = 0;
  bool bad = false;
  for (const Tensor& x : xs)
    dispatch_float("sum_squares", x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* p = x.data<T>();
      for (int64_t i = 0; i < x.numel(); i++) {
        double v = double(p[i]);
        bad |= !std::isfinite(v);
        total += v * v;
      }
    });
  if (nonfinite) *nonfinite = bad;
  return total;
}

}  // namespace spectra::kernels::cpu
