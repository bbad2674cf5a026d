// Softmax cross-entropy, one block per row: max and Σexp over the vocabulary in two passes (no
// probabilities stored); the backward pass recomputes exp(z − lse) per element.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"

namespace spectra::kernels::cuda {

namespace {
constexpr int kThreads = 512;

template <typename T>
__global__ void ce_fwd(const T* logits, const int32_t* targets, int64_t offset, float* loss,
                       float* lse, int64_t v) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* z = logits + r * v;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, to_f32(z[j]));
  m = block_max(m, scratch);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += expf(to_f32(z[j]) - m);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    float l = m + logf(s);
    lse[r] = l;
    const int64_t t = targets[r], local = t - offset;  // another shard's target: no term
    loss[r] = t < 0 ? 0.f : (local >= 0 && local < v) ? l - to_f32(z[local]) : l;
  }
}

template <typename T>
__global__ void ce_bwd(const T* logits, const int32_t* targets, int64_t offset, const float* lse,
                       const float* dloss, T* dlogits, int64_t v) {
  const int64_t r = blockIdx.x;
  if (targets[r] < 0) return;
  const int64_t t = targets[r] - offset;  // outside [0, v): the one-hot is another shard's
  const float l = lse[r], d = dloss[r];
  const T* z = logits + r * v;
  T* g = dlogits + r * v;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float p = expf(to_f32(z[j]) - l) - (j == t ? 1.f : 0.f);
    g[j] = from_f32<T>(to_f32(g[j]) + d * p);
  }
}

// One block: a fixed-order sum of the losses and a count of the kept targets.
__global__ void ce_mean(const float* loss, const int32_t* targets, int64_t n, float* mean,
                        float* count) {
  __shared__ float scratch[32];
  float s = 0.f, c = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    s += loss[i];
    c += targets[i] >= 0 ? 1.f : 0.f;
  }
  s = block_sum(s, scratch);
  c = block_sum(c, scratch);
  if (threadIdx.x == 0) {
    c = fmaxf(c, 1.f);
    mean[0] = s / c;
    count[0] = c;
  }
}

__global__ void ce_mean_bwd(const float* dmean, const float* count, float* dloss, int64_t n) {
  const float g = dmean[0] / count[0];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dloss[i] = g;
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                           Tensor& loss, Tensor& lse) {
  const int64_t n = rows_of(logits), v = logits.size(-1);
  if (n == 0) return;
  dispatch_act("cross_entropy_forward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    ce_fwd<<<unsigned(n), kThreads, 0, stream()>>>(static_cast<const T*>(logits.raw()),
                                                   targets.data<int32_t>(), vocab_offset,
                                                   loss.data<float>(), lse.data<float>(), v);
  });
  CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                            const Tensor& lse, const Tensor& dloss, Tensor& dlogits) {
  const int64_t n = rows_of(logits), v = logits.size(-1);
  if (n == 0) return;
  dispatch_act("cross_entropy_backward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    ce_bwd<<<unsigned(n), kThreads, 0, stream()>>>(
        static_cast<const T*>(logits.raw()), targets.data<int32_t>(), vocab_offset,
        lse.data<float>(), dloss.data<float>(), static_cast<T*>(dlogits.raw()), v);
  });
  CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

void cross_entropy_mean(const Tensor& loss, const Tensor& targets, Tensor& mean, Tensor& count) {
  SPECTRA_CHECK(loss.dtype() == DType::f32, "cross_entropy_mean: CUDA takes f32 losses, got {}",
                dtype_name(loss.dtype()));
  ce_mean<<<1, 1024, 0, stream()>>>(loss.data<float>(), targets.data<int32_t>(), loss.numel(),
                                    mean.data<float>(), count.data<float>());
  CUDA_CHECK_LAUNCH("cross_entropy_mean");
}

void cross_entropy_mean_backward(const Tensor& dmean, const Tensor& count, Tensor& dloss) {
  SPECTRA_CHECK(dloss.dtype() == DType::f32,
                "cross_entropy_mean_backward: CUDA takes f32 gradients, got {}",
                dtype_name(dloss.dtype()));
  ce_mean_bwd<<<blocks_for(dloss.numel(), 256), 256, 0, stream()>>>(
      dmean.data<float>(), count.data<float>(), dloss.data<float>(), dloss.numel());
  CUDA_CHECK_LAUNCH("cross_entropy_mean_backward");
}

}  // namespace spectra::kernels::cuda
