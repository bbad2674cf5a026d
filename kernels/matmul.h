// Matrix product: c = alpha · s · op(a) · op(b) + beta · c, where op(x) is x or xᵀ and s is
// scale[0] when `scale` is given (a one-element f32 tensor on the inputs' device: the ternary γ,
// read on the device so no host sync is needed), else 1.
// a, b, c are row-major 2-D after flattening leading dimensions: op(a) [M, K], op(b) [K, N],
// c [M, N]. CPU: all f32 or all f64 (OpenBLAS). CUDA: a and b share f32|bf16|f16, c is f32 or
// a's dtype, f32 accumulation (cuBLASLt).
#pragma once
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, matmul, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
           float alpha, float beta, const Tensor* scale)
}  // namespace spectra::kernels
