// RoPE: one thread per (token, head, i < Dh/2) pair, through the shared rope_cos_sin.
#include "kernels/cuda/common.cuh"
#include "kernels/rope.h"

namespace spectra::kernels::cuda {

namespace {
template <typename T>
__global__ void rope_kernel(const T* x, T* out, int64_t tokens, int64_t t, int64_t h, int64_t dh,
                            int64_t pos0, float theta, float sign, bool accumulate) {
  const int64_t half = dh / 2, n = tokens * h * half;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = k % half, row = k / half;  // row = token·H + head
    int64_t ti = (row / h) % t;
    float c, s;
    rope_cos_sin(pos0 + ti, i, dh, theta, c, s);
    s *= sign;
    int64_t base = row * dh;
    float x1 = to_f32(x[base + i]), x2 = to_f32(x[base + i + half]);
    float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
    if (accumulate) {
      y1 += to_f32(out[base + i]);
      y2 += to_f32(out[base + i + half]);
    }
    out[base + i] = from_f32<T>(y1);
    out[base + i + half] = from_f32<T>(y2);
  }
}

void rotate(const char* op, const Tensor& x, int64_t pos0, float theta, Tensor& out, float sign,
            bool acc) {
  const int64_t tokens = x.size(0) * x.size(1);
  dispatch_act(op, x.dtype(), [&](auto z) {
    using T = decltype(z);
    int64_t n = tokens * x.size(2) * x.size(3) / 2;
    rope_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(
        static_cast<const T*>(x.raw()), static_cast<T*>(out.raw()), tokens, x.size(1), x.size(2),
        x.size(3), pos0, theta, sign, acc);
  });
  CUDA_CHECK_LAUNCH(op);
}
}  // namespace

void rope_forward(const Tensor& x, int64_t pos0, float theta, Tensor& out) {
  rotate("rope_forward", x, pos0, theta, out, 1.f, false);
}
void rope_backward(const Tensor& dout, int64_t pos0, float theta, Tensor& dx) {
  rotate("rope_backward", dout, pos0, theta, dx, -1.f, true);
}

}  // namespace spectra::kernels::cuda
