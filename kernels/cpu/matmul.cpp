// matmul through OpenBLAS: row-major cblas_?gemm on the 2-D views.
#include <cblas.h>

#include "kernels/cpu/common.h"
#include "kernels/matmul.h"

namespace spectra::kernels::cpu {

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta,
            const Tensor* scale) {
  if (a.dtype() != b.dtype() || a.dtype() != c.dtype())
    throw Error(fmt::format("matmul: a {}, b {}, c {} must share a dtype on the CPU", a.str(),
                            b.str(), c.str()));
  const int64_t ar = rows_of(a), ac = a.size(-1), br = rows_of(b), bc = b.size(-1);
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, kb = tb ? bc : br, n = tb ? br : bc;
  if (k != kb || rows_of(c) != m || c.size(-1) != n)
    throw Error(fmt::format("matmul: op(a) [{}, {}] x op(b) [{}, {}] does not give c {}", m, k, kb,
                            n, c.str()));
  if (scale) {
    check_dtype("matmul", *scale, "scale", DType::f32);
    alpha *= scale->data<float>()[0];
  }
  if (m == 0 || n == 0) return;
  auto tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if (a.dtype() == DType::f32)
    cblas_sgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), alpha, a.data<float>(), int(ac),
                b.data<float>(), int(bc), beta, c.data<float>(), int(n));
  else if (a.dtype() == DType::f64)
    cblas_dgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), alpha, a.data<double>(), int(ac),
                b.data<double>(), int(bc), beta, c.data<double>(), int(n));
  else
    dispatch_float("matmul", a.dtype(), [](auto) {});
}

}  // namespace spectra::kernels::cpu
