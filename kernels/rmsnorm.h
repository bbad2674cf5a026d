// RMSNorm with a learnable gain (LLaMA): y = x · rstd · g, rstd = 1 / sqrt(mean(x²) + eps) per row.
// x, y: [N, d]; g: [d]; rstd: [N] in acc dtype, saved for the backward pass.
// CUDA: x, y f32|bf16|f16, g f32 or x's dtype.
#pragma once
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, rmsnorm_forward, const Tensor& x, const Tensor& g, float eps, Tensor& y,
           Tensor& rstd)
// dx += ∂L/∂x (x's dtype), dg += ∂L/∂g (acc dtype).
SPECTRA_OP(void, rmsnorm_backward, const Tensor& dy, const Tensor& x, const Tensor& g,
           const Tensor& rstd, Tensor& dx, Tensor& dg)
}  // namespace spectra::kernels
