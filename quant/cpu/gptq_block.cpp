// CPU reference of quant/gptq_block.h: LAPACK (OpenBLAS's) for the factorizations, OpenMP over
// rows for the column loop, OpenBLAS gemm over blocks of rows for the lazy update.
#include "quant/gptq_block.h"

#include "kernels/cpu/blas.h"

extern "C" {  // LAPACK's Fortran interface (column-major; a symmetric matrix reads the same)
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace spectra::quant::cpu {

Tensor cholesky_inverse_upper(const Tensor& h) {
  SPECTRA_CHECK(h.dim() == 2 && h.size(0) == h.size(1) && h.dtype() == DType::f64,
                "cholesky_inverse_upper: h is {}, expected f64 [n, n]", h.str());
  const int n = int(h.size(0));
  Tensor a = Tensor::empty(h.shape(), DType::f64);
  a.copy_from(h);
  double* p = a.data<double>();
  kernels::cpu::blas_single_threaded();
  // Column-major 'L' is row-major upper: H = UᵀU, then (H⁻¹)'s upper triangle, then its factor.
  int info = 0;
  const char lower = 'L';
  dpotrf_(&lower, &n, p, &n, &info);
  if (info != 0) return {};
  dpotri_(&lower, &n, p, &n, &info);
  if (info != 0) return {};
  dpotrf_(&lower, &n, p, &n, &info);
  if (info != 0) return {};
  Tensor u = Tensor::empty(h.shape(), DType::f32);
  float* o = u.data<float>();
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) o[i * n + j] = j < i ? 0.f : float(p[i * n + j]);
  return u;
}

void gptq_block(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2, int64_t group_size,
                Grid grid, Tensor& qt, Tensor& scales, Tensor& zeros) {
  const int64_t cols = wt.size(0), rows = wt.size(1);
  float *w = wt.data<float>(), *q = qt.data<float>();
  float *s = scales.data<float>(), *z = zeros.data<float>();
  const float* u = hinv.defined() ? hinv.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    gptq_row_block(w + r, q + r, s + r, z + r, rows, u, cols, i1, i2, group_size, grid);
}

void gptq_update(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2) {
  const int64_t cols = wt.size(0), rows = wt.size(1), m = cols - i2, k = i2 - i1;
  float* w = wt.data<float>();
  const float* u = hinv.data<float>();
  // Rows [lo, hi) of the update: wt[i2 + lo ..] −= U[i1:i2, i2 + lo ..]ᵀ · wt[i1:i2].
  const int64_t block = 64, blocks = (m + block - 1) / block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t lo = b * block, hi = std::min(m, lo + block);
    kernels::cpu::gemm<float>(true, false, hi - lo, rows, k, -1.f, u + i1 * cols + i2 + lo, cols,
                              w + i1 * rows, rows, 1.f, w + (i2 + lo) * rows, rows);
  }
}

}  // namespace spectra::quant::cpu
