// Elementwise ops (grid-stride loops over f32 math) and the deterministic sum of squares.
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace spectra::kernels::cuda {

namespace {
template <typename T>
__global__ void add_kernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}
template <typename X, typename Y>
__global__ void axpy_kernel(float alpha, const X* x, Y* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<Y>(to_f32(y[i]) + alpha * to_f32(x[i]));
}
template <typename T>
__global__ void scale_kernel(T* x, float alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f32<T>(alpha * to_f32(x[i]));
}
template <typename S, typename D>
__global__ void cast_kernel(const S* s, D* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    d[i] = from_f32<D>(to_f32(s[i]));
}

constexpr int kSumBlocks = 256, kThreads = 256;
// Stage 1: block b of this launch adds Σx² over its grid-stride share into partial[b]; the
// non-finite flag is an integer max (order-free, so still deterministic).
template <typename T>
__global__ void sum_squares_kernel(const T* x, int64_t n, float* partial, int* nonfinite) {
  __shared__ float scratch[32];
  float s = 0.f;
  bool bad = false;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = to_f32(x[i]);
    bad |= !isfinite(v);
    s += v * v;
  }
  s = block_sum(s, scratch);
  if (bad) atomicMax(nonfinite, 1);
  if (threadIdx.x == 0) partial[blockIdx.x] += s;
}
// Stage 2: one block sums the partials in a fixed order.
__global__ void sum_partials_kernel(const float* partial, int n, float* out) {
  __shared__ float scratch[32];
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}
}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_act("add", a.dtype(), [&](auto z) {
    using T = decltype(z);
    add_kernel<<<blocks_for(a.numel(), kThreads), kThreads, 0, stream()>>>(
        static_cast<const T*>(a.raw()), static_cast<const T*>(b.raw()), static_cast<T*>(out.raw()),
        a.numel());
  });
  CUDA_CHECK_LAUNCH("add");
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  dispatch_act("axpy", x.dtype(), [&](auto zx) {
    dispatch_act("axpy", y.dtype(), [&](auto zy) {
      using X = decltype(zx);
      using Y = decltype(zy);
      axpy_kernel<<<blocks_for(x.numel(), kThreads), kThreads, 0, stream()>>>(
          alpha, static_cast<const X*>(x.raw()), static_cast<Y*>(y.raw()), x.numel());
    });
  });
  CUDA_CHECK_LAUNCH("axpy");
}

void scale(Tensor& x, float alpha) {
  dispatch_act("scale", x.dtype(), [&](auto z) {
    using T = decltype(z);
    scale_kernel<<<blocks_for(x.numel(), kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(x.raw()), alpha, x.numel());
  });
  CUDA_CHECK_LAUNCH("scale");
}

void cast(const Tensor& src, Tensor& dst) {
  dispatch_act("cast", src.dtype(), [&](auto zs) {
    dispatch_act("cast", dst.dtype(), [&](auto zd) {
      using S = decltype(zs);
      using D = decltype(zd);
      cast_kernel<<<blocks_for(src.numel(), kThreads), kThreads, 0, stream()>>>(
          static_cast<const S*>(src.raw()), static_cast<D*>(dst.raw()), src.numel());
    });
  });
  CUDA_CHECK_LAUNCH("cast");
}

double sum_squares(const std::vector<Tensor>& xs, bool* nonfinite) {
  Tensor partial =
      Tensor::zeros({kSumBlocks}, DType::f32, Device::cuda(spectra::cuda::current_device()));
  Tensor flag = Tensor::zeros({1}, DType::i32, partial.device());
  Tensor total = scratch({1});
  for (const Tensor& x : xs) {
    if (x.numel() == 0) continue;
    dispatch_act("sum_squares", x.dtype(), [&](auto z) {
      using T = decltype(z);
      sum_squares_kernel<<<kSumBlocks, kThreads, 0, stream()>>>(
          static_cast<const T*>(x.raw()), x.numel(), partial.data<float>(), flag.data<int32_t>());
    });
    CUDA_CHECK_LAUNCH("sum_squares");
  }
  sum_partials_kernel<<<1, kThreads, 0, stream()>>>(partial.data<float>(), kSumBlocks,
                                                    total.data<float>());
  CUDA_CHECK_LAUNCH("sum_squares");
  if (nonfinite) *nonfinite = flag.item() != 0;
  return total.item();
}

}  // namespace spectra::kernels::cuda
