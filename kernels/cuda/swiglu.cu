// SwiGLU gating, elementwise through the shared swiglu_value / swiglu_grad in f32.
#include "kernels/cuda/common.cuh"
#include "kernels/swiglu.h"

namespace spectra::kernels::cuda {

namespace {
template <typename T>
__global__ void swiglu_fwd(const T* g, const T* u, T* o, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    o[i] = from_f32<T>(swiglu_value(to_f32(g[i]), to_f32(u[i])));
}
template <typename T>
__global__ void swiglu_bwd(const T* d, const T* g, const T* u, T* dg, T* du, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float a, b;
    swiglu_grad(to_f32(g[i]), to_f32(u[i]), to_f32(d[i]), a, b);
    dg[i] = from_f32<T>(to_f32(dg[i]) + a);
    du[i] = from_f32<T>(to_f32(du[i]) + b);
  }
}
}  // namespace

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  dispatch_act("swiglu_forward", gate.dtype(), [&](auto z) {
    using T = decltype(z);
    swiglu_fwd<<<blocks_for(gate.numel(), 256), 256, 0, stream()>>>(
        static_cast<const T*>(gate.raw()), static_cast<const T*>(up.raw()),
        static_cast<T*>(out.raw()), gate.numel());
  });
  CUDA_CHECK_LAUNCH("swiglu_forward");
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  dispatch_act("swiglu_backward", gate.dtype(), [&](auto z) {
    using T = decltype(z);
    swiglu_bwd<<<blocks_for(gate.numel(), 256), 256, 0, stream()>>>(
        static_cast<const T*>(dout.raw()), static_cast<const T*>(gate.raw()),
        static_cast<const T*>(up.raw()), static_cast<T*>(dgate.raw()), static_cast<T*>(dup.raw()),
        gate.numel());
  });
  CUDA_CHECK_LAUNCH("swiglu_backward");
}

}  // namespace spectra::kernels::cuda
