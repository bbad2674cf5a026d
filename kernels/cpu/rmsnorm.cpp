// RMSNorm: per row, rstd = 1/sqrt(mean(x²) + eps), y = x·rstd·g.
// Backward with u = x·rstd: dx = rstd·(dy·g − u·mean(dy·g·u)), dg = Σ_rows dy·u.
#include "kernels/rmsnorm.h"

#include <tuple>

#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

namespace {
// (N, d) of x [N, d] (leading dimensions flattened).
std::pair<int64_t, int64_t> rows_cols(const Tensor& x) { return {rows_of(x), x.size(-1)}; }
}  // namespace

void rmsnorm_forward(const Tensor& x, const Tensor& g, float eps, Tensor& y, Tensor& rstd) {
  int64_t n, d;  // not a structured binding: clang cannot capture those in OpenMP loops
  std::tie(n, d) = rows_cols(x);
  dispatch_float("rmsnorm_forward", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *xp = x.data<T>(), *gp = g.data<T>();
    T *yp = y.data<T>(), *rp = rstd.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T* xr = xp + r * d;
      double ss = 0;
      for (int64_t i = 0; i < d; i++) ss += double(xr[i]) * double(xr[i]);
      const T rs = T(1.0 / std::sqrt(ss / double(d) + double(eps)));
      rp[r] = rs;
      T* yr = yp + r * d;
      for (int64_t i = 0; i < d; i++) yr[i] = xr[i] * rs * gp[i];
    }
  });
}

void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                      Tensor& dx, Tensor& dg) {
  int64_t n, d;  // not a structured binding: clang cannot capture those in OpenMP loops
  std::tie(n, d) = rows_cols(x);
  dispatch_float("rmsnorm_backward", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *dyp = dy.data<T>(), *xp = x.data<T>(), *gp = g.data<T>(), *rp = rstd.data<T>();
    T *dxp = dx.data<T>(), *dgp = dg.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T *xr = xp + r * d, *dyr = dyp + r * d;
      const T rs = rp[r];
      double dot = 0;  // Σ dy·g·x, times rstd/d below: mean(dy·g·u)
      for (int64_t i = 0; i < d; i++) dot += double(dyr[i]) * double(gp[i]) * double(xr[i]);
      const T m = T(dot * double(rs) / double(d));
      T* dxr = dxp + r * d;
      for (int64_t i = 0; i < d; i++) dxr[i] += rs * (dyr[i] * gp[i] - xr[i] * rs * m);
    }
    // dg: each thread owns a block of columns and sums its rows in order (deterministic).
    constexpr int64_t kCols = 32;
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < d; c0 += kCols) {
      const int64_t c1 = std::min(d, c0 + kCols);
      double acc[kCols] = {};
      for (int64_t r = 0; r < n; r++) {
        const T *xr = xp + r * d, *dyr = dyp + r * d;
        const double rs = double(rp[r]);
        for (int64_t i = c0; i < c1; i++) acc[i - c0] += double(dyr[i]) * double(xr[i]) * rs;
      }
      for (int64_t i = c0; i < c1; i++) dgp[i] += T(acc[i - c0]);
    }
  });
}

// The reference is the composition: add (rounding h to its dtype), then the norm of that h; the
// backward forms t = dh + the norm's dx in f64 and rounds once.
void add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& g, float eps, Tensor& h,
                         Tensor& y, Tensor& rstd) {
  dispatch_float("add_rmsnorm_forward", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *xp = x.data<T>(), *rp = r.data<T>();
    T* hp = h.data<T>();
    for (int64_t i = 0; i < x.numel(); i++) hp[i] = xp[i] + rp[i];
  });
  rmsnorm_forward(h, g, eps, y, rstd);
}

void add_rmsnorm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& g,
                          const Tensor& rstd, Tensor& dx, Tensor& dr, Tensor& dg) {
  int64_t n, d;
  std::tie(n, d) = rows_cols(h);
  dispatch_float("add_rmsnorm_backward", h.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *dyp = dy.data<T>(), *dhp = dh.data<T>(), *hp = h.data<T>(), *gp = g.data<T>(),
            *rp = rstd.data<T>();
    T *dxp = dx.data<T>(), *drp = dr.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < n; row++) {
      const T *hr = hp + row * d, *dyr = dyp + row * d, *dhr = dhp + row * d;
      const double rs = double(rp[row]);
      double dot = 0;
      for (int64_t i = 0; i < d; i++) dot += double(dyr[i]) * double(gp[i]) * double(hr[i]);
      const double m = dot * rs / double(d);
      for (int64_t i = 0; i < d; i++) {
        const double t =
            double(dhr[i]) + rs * (double(dyr[i]) * double(gp[i]) - double(hr[i]) * rs * m);
        dxp[row * d + i] += T(t);
        drp[row * d + i] += T(t);
      }
    }
  });
  // dg as rmsnorm_backward sums it, with its dx going to a scratch buffer.
  Tensor scratch = Tensor::zeros(h.shape(), h.dtype());
  rmsnorm_backward(dy, h, g, rstd, scratch, dg);
}

}  // namespace spectra::kernels::cpu
