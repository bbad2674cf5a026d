// RMSNorm: per row, rstd = 1/sqrt(mean(x²) + eps), y = x·rstd·g.
// Backward with u = x·rstd: dx = rstd·(dy·g − u·mean(dy·g·u)), dg = Σ_rows dy·u.
#include "kernels/cpu/common.h"
#include "kernels/rmsnorm.h"

namespace spectra::kernels::cpu {

void rmsnorm_forward(const Tensor& x, const Tensor& g, float eps, Tensor& y, Tensor& rstd) {
  check_same("rmsnorm_forward", x, "x", y, "y");
  const int64_t n = rows_of(x), d = x.size(-1);
  if (g.numel() != d || g.dtype() != x.dtype() || rstd.numel() != n ||
      rstd.dtype() != acc_dtype(x.dtype()))
    throw Error(fmt::format("rmsnorm_forward: x {}, g {}, rstd {} disagree", x.str(), g.str(), rstd.str()));
  dispatch_float("rmsnorm_forward", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *xp = x.data<T>(), *gp = g.data<T>();
    T *yp = y.data<T>(), *rp = rstd.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T* xr = xp + r * d;
      double ss = 0;
      for (int64_t i = 0; i < d; i++) ss += double(xr[i]) * double(xr[i]);
      T rs = T(1.0 / std::sqrt(ss / double(d) + double(eps)));
      rp[r] = rs;
      for (int64_t i = 0; i < d; i++) yp[r * d + i] = xr[i] * rs * gp[i];
    }
  });
}

void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                      Tensor& dx, Tensor& dg) {
  check_same("rmsnorm_backward", dy, "dy", x, "x");
  check_same("rmsnorm_backward", dx, "dx", x, "x");
  check_same("rmsnorm_backward", dg, "dg", g, "g");
  const int64_t n = rows_of(x), d = x.size(-1);
  dispatch_float("rmsnorm_backward", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *dyp = dy.data<T>(), *xp = x.data<T>(), *gp = g.data<T>(), *rp = rstd.data<T>();
    T *dxp = dx.data<T>(), *dgp = dg.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T *xr = xp + r * d, *dyr = dyp + r * d;
      double dot = 0;  // mean(dy·g·u)
      for (int64_t i = 0; i < d; i++) dot += double(dyr[i]) * double(gp[i]) * double(xr[i]) * double(rp[r]);
      T m = T(dot / double(d));
      for (int64_t i = 0; i < d; i++) {
        T u = xr[i] * rp[r];
        dxp[r * d + i] += rp[r] * (dyr[i] * gp[i] - u * m);
      }
    }
    // dg in a fixed row order: deterministic.
    for (int64_t r = 0; r < n; r++)
      for (int64_t i = 0; i < d; i++) dgp[i] += dyp[r * d + i] * xp[r * d + i] * rp[r];
  });
}

}  // namespace spectra::kernels::cpu
