// OpenBLAS's row-major gemm for f32 and f64. OpenMP owns the threads: the kernels call gemm from
// their own parallel loops and OpenBLAS runs single-threaded. Two thread pools on the same cores
// (OpenBLAS's pthreads spinning beside OpenMP's workers) made a training step of the tiny model
// about 2x slower on 2 cores.
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace spectra::kernels::cpu {

inline void blas_single_threaded() {
#ifdef OPENBLAS_VERSION
  static const bool once = (openblas_set_num_threads(1), true);
  (void)once;
#endif
}

// c = alpha·op(a)·op(b) + beta·c with op(a) [m, k], op(b) [k, n], row-major with leading
// dimensions lda, ldb, ldc. k = 0 gives c = beta·c.
template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  blas_single_threaded();
  auto ld = [](int64_t x) { return int(std::max<int64_t>(1, x)); };  // BLAS rejects 0
  if (m == 1 && k > 0) {
    // One row (a decoding step's attention, a single token's projection): c = op(b)ᵀ·a as a
    // matrix-vector product, which reads b in place; gemm would copy b into its packed panels
    // first, the bulk of the time at this size.
    const auto tr = tb ? CblasNoTrans : CblasTrans;  // b [n, k] (tb) or [k, n], row-major
    const int rows = int(tb ? n : k), cols = int(tb ? k : n), inc = ta ? ld(lda) : 1;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemv(CblasRowMajor, tr, rows, cols, alpha, b, ld(ldb), a, inc, beta, c, 1);
    else
      cblas_dgemv(CblasRowMajor, tr, rows, cols, alpha, b, ld(ldb), a, inc, beta, c, 1);
    return;
  }
  const auto tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), alpha, a, ld(lda), b, ld(ldb),
                beta, c, ld(ldc));
  else
    cblas_dgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), alpha, a, ld(lda), b, ld(ldb),
                beta, c, ld(ldc));
}

}  // namespace spectra::kernels::cpu
