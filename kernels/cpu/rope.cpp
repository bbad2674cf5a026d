// RoPE (rotate-half) and its inverse rotation, through the shared rope_cos_sin.
#include "kernels/cpu/common.h"
#include "kernels/rope.h"

namespace spectra::kernels::cpu {

namespace {
// out = R(sign·angle)·x, accumulated into out when `accumulate`.
void rotate(const char* op, const Tensor& x, int64_t pos0, float theta, Tensor& out, float sign,
            bool accumulate) {
  check_same(op, x, "x", out, "out");
  if (x.dim() != 4 || x.size(3) % 2 != 0)
    throw Error(fmt::format("{}: x must be [B, T, H, Dh] with even Dh, got {}", op, x.str()));
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), dh = x.size(3), half = dh / 2;
  dispatch_float(op, x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* op_ = out.data<T>();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < b; bi++)
      for (int64_t ti = 0; ti < t; ti++)
        for (int64_t i = 0; i < half; i++) {
          float c, s;
          rope_cos_sin(pos0 + ti, i, dh, theta, c, s);
          s *= sign;
          for (int64_t hi = 0; hi < h; hi++) {
            int64_t base = ((bi * t + ti) * h + hi) * dh;
            T x1 = xp[base + i], x2 = xp[base + i + half];
            T y1 = x1 * T(c) - x2 * T(s), y2 = x2 * T(c) + x1 * T(s);
            if (accumulate) {
              op_[base + i] += y1;
              op_[base + i + half] += y2;
            } else {
              op_[base + i] = y1;
              op_[base + i + half] = y2;
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
