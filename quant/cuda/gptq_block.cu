// CUDA path of quant/gptq_block.h: cuSOLVER (f64) for the factorizations, one thread per row for
// the column loop (gptq_row_block, the CPU reference's own code), cuBLAS for the lazy update.
// Unverified on a GPU until scripts/gpu-check has run it (tests/cuda/test_quant_cuda.cpp).
#include <cusolverDn.h>

#include "core/cuda/check.cuh"
#include "kernels/cuda/common.cuh"
#include "quant/gptq_block.h"

#define CUSOLVER_CHECK(call)                                                                      \
  do {                                                                                            \
    cusolverStatus_t st_ = (call);                                                                \
    if (st_ != CUSOLVER_STATUS_SUCCESS)                                                           \
      throw ::spectra::Error(::fmt::format("cuSOLVER error {} in {} at {}:{}, rank {}", int(st_), \
                                           #call, __FILE__, __LINE__, ::spectra::error_rank()));  \
  } while (0)

namespace spectra::quant::cuda {

namespace {

using kernels::cuda::blocks_for;
using kernels::cuda::stream;

cusolverDnHandle_t solver() {  // one per process, on the stream the kernels use
  static cusolverDnHandle_t h = [] {
    cusolverDnHandle_t x;
    CUSOLVER_CHECK(cusolverDnCreate(&x));
    return x;
  }();
  CUSOLVER_CHECK(cusolverDnSetStream(h, stream()));
  return h;
}

cublasHandle_t blas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x;
    CUBLAS_CHECK(cublasCreate(&x));
    return x;
  }();
  CUBLAS_CHECK(cublasSetStream(h, stream()));
  return h;
}

// The row-major upper triangle of a (f64), in f32, zeros below.
__global__ void upper_to_f32(const double* a, float* u, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * n;
       i += int64_t(gridDim.x) * blockDim.x)
    u[i] = i % n < i / n ? 0.f : float(a[i]);
}

__global__ void row_block(float* wt, float* qt, float* scales, float* zeros, int64_t rows,
                          const float* hinv, int64_t cols, int64_t i1, int64_t i2,
                          int64_t group_size, Grid g) {
  const int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (r < rows)
    gptq_row_block(wt + r, qt + r, scales + r, zeros + r, rows, hinv, cols, i1, i2, group_size, g);
}

}  // namespace

Tensor cholesky_inverse_upper(const Tensor& h) {
  SPECTRA_CHECK(h.dim() == 2 && h.size(0) == h.size(1) && h.dtype() == DType::f64,
                "cholesky_inverse_upper: h is {}, expected f64 [n, n]", h.str());
  const int n = int(h.size(0));
  Tensor a = Tensor::empty(h.shape(), DType::f64, h.device());
  a.copy_from(h);
  double* p = a.data<double>();
  cusolverDnHandle_t s = solver();
  // Column-major lower is row-major upper (as the CPU reference explains).
  const cublasFillMode_t lower = CUBLAS_FILL_MODE_LOWER;
  int work = 0, work2 = 0;
  CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(s, lower, n, p, n, &work));
  CUSOLVER_CHECK(cusolverDnDpotri_bufferSize(s, lower, n, p, n, &work2));
  Tensor ws = Tensor::empty({std::max(work, work2) + 1}, DType::f64, h.device());
  Tensor info = Tensor::zeros({1}, DType::i32, h.device());
  auto ok = [&] { return info.to(Device::cpu()).data<int32_t>()[0] == 0; };
  CUSOLVER_CHECK(
      cusolverDnDpotrf(s, lower, n, p, n, ws.data<double>(), work, info.data<int32_t>()));
  if (!ok()) return {};
  CUSOLVER_CHECK(
      cusolverDnDpotri(s, lower, n, p, n, ws.data<double>(), work2, info.data<int32_t>()));
  if (!ok()) return {};
  CUSOLVER_CHECK(
      cusolverDnDpotrf(s, lower, n, p, n, ws.data<double>(), work, info.data<int32_t>()));
  if (!ok()) return {};
  Tensor u = Tensor::empty(h.shape(), DType::f32, h.device());
  upper_to_f32<<<blocks_for(int64_t(n) * n, 256), 256, 0, stream()>>>(p, u.data<float>(), n);
  CUDA_CHECK_LAUNCH("cholesky_inverse_upper");
  return u;
}

void gptq_block(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2, int64_t group_size,
                Grid grid, Tensor& qt, Tensor& scales, Tensor& zeros) {
  const int64_t cols = wt.size(0), rows = wt.size(1);
  const float* u = hinv.defined() ? hinv.data<float>() : nullptr;
  row_block<<<blocks_for(rows, 128), 128, 0, stream()>>>(wt.data<float>(), qt.data<float>(),
                                                         scales.data<float>(), zeros.data<float>(),
                                                         rows, u, cols, i1, i2, group_size, grid);
  CUDA_CHECK_LAUNCH("gptq_block");
}

void gptq_update(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2) {
  const int64_t cols = wt.size(0), rows = wt.size(1);
  const float minus_one = -1.f, one = 1.f;
  float* w = wt.data<float>();
  const float* u = hinv.data<float>();
  // Row-major wt [cols, rows] is column-major [rows, cols]: W[:, i2:] −= Err · U[i1:i2, i2:],
  // with U[i1:i2, i2:] (row-major, leading dimension cols) read transposed.
  CUBLAS_CHECK(cublasSgemm(blas(), CUBLAS_OP_N, CUBLAS_OP_T, int(rows), int(cols - i2),
                           int(i2 - i1), &minus_one, w + i1 * rows, int(rows), u + i1 * cols + i2,
                           int(cols), &one, w + i2 * rows, int(rows)));
}

}  // namespace spectra::quant::cuda
