// The TriLM quantizer in three launches: per-block partial Σ|w| over a fixed grid, one block
// reducing the partials in a fixed order into γ = eps + mean|w| (deterministic, no atomics), and
// the elementwise quantize + cast through the shared ternary_trit.
#include "kernels/cuda/common.cuh"
#include "kernels/ternary.h"

namespace spectra::kernels::cuda {

namespace {
constexpr int kBlocks = 256, kThreads = 256;

__global__ void abs_sum_partial(const float* w, int64_t n, float* partial) {
  __shared__ float scratch[32];
  float s = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    s += fabsf(w[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void gamma_from_partials(const float* partial, int blocks, int64_t n, float eps,
                                    float* gamma) {
  __shared__ float scratch[32];
  float s = 0.f;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *gamma = eps + s / float(n > 0 ? n : 1);
}

template <typename T>
__global__ void quantize(const float* w, int64_t n, const float* gamma, T* t) {
  const float g = *gamma;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    t[i] = from_f32<T>(ternary_trit(w[i], g));
}
}  // namespace

void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  check_dtype("ternary_quantize", w, "w", DType::f32);
  check_dtype("ternary_quantize", gamma, "gamma", DType::f32);
  check_shape("ternary_quantize", w, "w", t, "t");
  Tensor partial = scratch({kBlocks});
  abs_sum_partial<<<kBlocks, kThreads, 0, stream()>>>(w.data<float>(), w.numel(),
                                                      partial.data<float>());
  gamma_from_partials<<<1, kThreads, 0, stream()>>>(partial.data<float>(), kBlocks, w.numel(), eps,
                                                    gamma.data<float>());
  dispatch_act("ternary_quantize", t.dtype(), [&](auto z) {
    using T = decltype(z);
    quantize<<<blocks_for(w.numel(), kThreads), kThreads, 0, stream()>>>(
        w.data<float>(), w.numel(), gamma.data<float>(), static_cast<T*>(t.raw()));
  });
  CUDA_CHECK_LAUNCH("ternary_quantize");
}

}  // namespace spectra::kernels::cuda
