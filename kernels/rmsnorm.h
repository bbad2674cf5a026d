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

// A pre-norm block's residual add and the norm after it, in one pass: h = x + r (rounded to
// x's dtype), y = rmsnorm(h)·g computed from that rounded h, so the pair equals add followed
// by rmsnorm_forward. x, r, h, y: [N, d].
SPECTRA_OP(void, add_rmsnorm_forward, const Tensor& x, const Tensor& r, const Tensor& g, float eps,
           Tensor& h, Tensor& y, Tensor& rstd)
// With dh the gradient reaching h from its other uses: t = dh + ∂L/∂h through the norm (in acc,
// rounded once), dx += t, dr += t, dg += ∂L/∂g.
SPECTRA_OP(void, add_rmsnorm_backward, const Tensor& dy, const Tensor& dh, const Tensor& h,
           const Tensor& g, const Tensor& rstd, Tensor& dx, Tensor& dr, Tensor& dg)
}  // namespace spectra::kernels
