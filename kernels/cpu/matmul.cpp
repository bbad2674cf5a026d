// matmul through OpenBLAS (kernels/cpu/blas.h) on the 2-D views, leading dims flattened. Blocks
// of c's rows (or columns, when c is wide) go to the OpenMP threads.
#include "kernels/matmul.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta,
            const Tensor* scale) {
  const int64_t ar = rows_of(a), ac = a.dim() ? a.size(-1) : 1;
  const int64_t br = rows_of(b), bc = b.dim() ? b.size(-1) : 1;
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  // The product alpha·s rounds once, to the compute dtype.
  const double s = scale ? double(scale->data<float>()[0]) : 1.0;
  dispatch_float("matmul", a.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *ap = a.data<T>(), *bp = b.data<T>();
    T* cp = c.data<T>();
    const T al = T(double(alpha) * s), be = T(beta);
    // Blocks of >= 64 rows (or columns) and ~1M flops, whatever the thread count: each block is
    // one single-threaded gemm, so c's bits do not depend on how many threads run the blocks.
    const bool by_rows = m >= n;
    const int64_t len = by_rows ? m : n, other = by_rows ? n : m;
    const int64_t block = std::max<int64_t>(64, (1 << 19) / std::max<int64_t>(1, k * other));
    const int64_t blocks = (len + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t i = 0; i < blocks; i++) {
      const int64_t lo = i * block, hi = std::min(len, lo + block);
      if (by_rows)  // rows lo..hi of op(a) and c
        gemm(ta, tb, hi - lo, n, k, al, ap + (ta ? lo : lo * ac), ac, bp, bc, be, cp + lo * n, n);
      else  // columns lo..hi of op(b) and c
        gemm(ta, tb, m, hi - lo, k, al, ap, ac, bp + (tb ? lo * bc : lo), bc, be, cp + lo, n);
    }
  });
}

}  // namespace spectra::kernels::cpu
