// RoPE (rotate-half) and its inverse rotation, through the shared rope_cos_sin.
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/rope.h"

namespace spectra::kernels::cpu {

namespace {
// out = R(sign·angle)·x, or out += it when `accumulate` (the backward pass).
void rotate(const char* op, const Tensor& x, int64_t pos0, float theta, Tensor& out, float sign,
            bool accumulate) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), dh = x.size(3), half = dh / 2;
  dispatch_float(op, x.dtype(), [&](auto z) {
    using T = decltype(z);
    // cos and sin of every (position, frequency), shared by the batch and the heads.
    std::vector<T> cosv(size_t(t * half)), sinv(size_t(t * half));
    for (int64_t ti = 0; ti < t; ti++)
      for (int64_t i = 0; i < half; i++) {
        float c, s;
        rope_cos_sin(pos0 + ti, i, dh, theta, c, s);
        cosv[size_t(ti * half + i)] = T(c);
        sinv[size_t(ti * half + i)] = T(sign * s);
      }
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < b; bi++)
      for (int64_t ti = 0; ti < t; ti++) {
        const T *c = cosv.data() + ti * half, *s = sinv.data() + ti * half;
        for (int64_t hi = 0; hi < h; hi++) {
          const int64_t base = ((bi * t + ti) * h + hi) * dh;
          const T *x1 = xp + base, *x2 = xp + base + half;
          T *y1 = yp + base, *y2 = yp + base + half;
          for (int64_t i = 0; i < half; i++) {
            const T a = x1[i] * c[i] - x2[i] * s[i], bb = x2[i] * c[i] + x1[i] * s[i];
            y1[i] = accumulate ? y1[i] + a : a;
            y2[i] = accumulate ? y2[i] + bb : bb;
          }
        }
      }
  });
}
}  // namespace

void rope_forward(const Tensor& x, int64_t pos0, float theta, Tensor& out) {
  rotate("rope_forward", x, pos0, theta, out, 1.f, false);
}

void rope_backward(const Tensor& dout, int64_t pos0, float theta, Tensor& dx) {
  rotate("rope_backward", dout, pos0, theta, dx, -1.f, true);
}

}  // namespace spectra::kernels::cpu
