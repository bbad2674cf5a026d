// Shared helpers of the CUDA kernels: element types and conversions, dtype dispatch (the CUDA
// path computes in f32, bf16 or f16: a capability limit; the arguments are checked before, by
// kernels/checks.h), the stream, launch sizes, and warp and block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/cuda/check.cuh"
#include "core/cuda_runtime.h"
#include "core/tensor.h"

namespace spectra::kernels::cuda {

inline cudaStream_t stream() { return static_cast<cudaStream_t>(spectra::cuda::stream()); }

// Loads and stores in f32 whatever the storage type.
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) {
  return __float2half(x);
}

// Calls fn(T{}) with T the CUDA storage type of an activation dtype (f32, bf16, f16).
template <typename Fn>
void dispatch_act(const char* op, DType t, Fn&& fn) {
  switch (t) {
    case DType::f32:
      return fn(float{});
    case DType::bf16:
      return fn(__nv_bfloat16{});
    case DType::f16:
      return fn(__half{});
    default:
      throw Error(
          fmt::format("{}: the CUDA backend takes f32, bf16 or f16, got {}", op, dtype_name(t)));
  }
}

inline int blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 32) {
  int64_t b = (n + threads - 1) / threads;
  return int(b < 1 ? 1 : (b > cap ? cap : b));
}

inline int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(-1); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory. Fixed order: deterministic.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// A scratch device buffer, reused across calls on the stream (stream order keeps reuse safe).
inline Tensor scratch(Shape shape, DType t = DType::f32) {
  return Tensor::empty(std::move(shape), t, Device::cuda(spectra::cuda::current_device()));
}

}  // namespace spectra::kernels::cuda
