// The TriLM quantizer in three launches: per-block partial Σ|w| over a fixed grid, one block
// reducing the partials in a fixed order into γ = eps + mean|w| (deterministic, no atomics), and
// the elementwise quantize + cast through the shared ternary_trit.
#include "kernels/cuda/common.cuh"
#include "kernels/ternary.h"

namespace spectra::kernels::cuda {

namespace {
constexpr int kBlocks = 256, kThreads = 256;

// Σ|w| over the sub-matrix of w [*, cols] starting at column c0 of row r0, gc columns wide
// (the whole matrix: r0 = c0 = 0, gc = cols); element k of the n is w[r0 + k / gc, c0 + k % gc].
__global__ void abs_sum_partial(const float* w, int64_t n, int64_t cols, int64_t r0, int64_t c0,
                                int64_t gc, float* partial) {
  __shared__ float scratch[32];
  float s = 0.f;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x)
    s += fabsf(w[(r0 + k / gc) * cols + c0 + k % gc]);
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

// effective = γ_g · trit, with g the element's row block (axis 0) or column block (axis 1).
template <typename T>
__global__ void quantize_groups(const float* w, int64_t n, int64_t cols, int axis, int64_t gr,
                                int64_t gc, const float* gamma, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gamma[axis == 0 ? i / cols / gr : i % cols / gc];
    out[i] = from_f32<T>(g * ternary_trit(w[i], g));
  }
}

// The CUDA quantizer reads f32 latent weights (the CPU also takes f64): a capability limit.
void f32_weights(const char* op, const Tensor& w) {
  if (w.dtype() != DType::f32)
    throw Error(fmt::format("{}: the CUDA backend quantizes f32 weights, got {}", op,
                            dtype_name(w.dtype())));
}
}  // namespace

void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  f32_weights("ternary_quantize", w);
  Tensor partial = scratch({kBlocks});
  abs_sum_partial<<<kBlocks, kThreads, 0, stream()>>>(w.data<float>(), w.numel(), w.numel(), 0, 0,
                                                      w.numel(), partial.data<float>());
  gamma_from_partials<<<1, kThreads, 0, stream()>>>(partial.data<float>(), kBlocks, w.numel(), eps,
                                                    gamma.data<float>());
  dispatch_act("ternary_quantize", t.dtype(), [&](auto z) {
    using T = decltype(z);
    quantize<<<blocks_for(w.numel(), kThreads), kThreads, 0, stream()>>>(
        w.data<float>(), w.numel(), gamma.data<float>(), static_cast<T*>(t.raw()));
  });
  CUDA_CHECK_LAUNCH("ternary_quantize");
}

void ternary_quantize_groups(const Tensor& w, float eps, int64_t groups, int axis,
                             Tensor& effective, Tensor& gamma) {
  f32_weights("ternary_quantize_groups", w);
  const int64_t rows = w.size(0), cols = w.size(1);
  const int64_t gr = axis == 0 ? rows / groups : rows, gc = axis == 1 ? cols / groups : cols;
  Tensor partial = scratch({kBlocks});
  for (int64_t g = 0; g < groups; g++) {  // a few groups: one reduction each, in fixed order
    abs_sum_partial<<<kBlocks, kThreads, 0, stream()>>>(
        w.data<float>(), gr * gc, cols, axis == 0 ? g * gr : 0, axis == 1 ? g * gc : 0, gc,
        partial.data<float>());
    gamma_from_partials<<<1, kThreads, 0, stream()>>>(partial.data<float>(), kBlocks, gr * gc, eps,
                                                      gamma.data<float>() + g);
  }
  dispatch_act("ternary_quantize_groups", effective.dtype(), [&](auto z) {
    using T = decltype(z);
    quantize_groups<<<blocks_for(w.numel(), kThreads), kThreads, 0, stream()>>>(
        w.data<float>(), w.numel(), cols, axis, gr, gc, gamma.data<float>(),
        static_cast<T*>(effective.raw()));
  });
  CUDA_CHECK_LAUNCH("ternary_quantize_groups");
}

}  // namespace spectra::kernels::cuda
