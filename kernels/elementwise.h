// Elementwise ops and reductions the model and optimizer need. Tensors of one call share shape,
// dtype and device unless stated.
#pragma once
#include <vector>

#include "kernels/op.h"

namespace spectra::kernels {
// out = a + b (the residual stream).
SPECTRA_OP(void, add, const Tensor& a, const Tensor& b, Tensor& out)
// y += alpha · x (gradient accumulation). y is x's dtype or acc (x bf16, y f32 on CUDA).
SPECTRA_OP(void, axpy, float alpha, const Tensor& x, Tensor& y)
// x *= alpha.
SPECTRA_OP(void, scale, Tensor& x, float alpha)
// dst = src converted to dst's dtype (same shape and device).
SPECTRA_OP(void, cast, const Tensor& src, Tensor& dst)
// Σ x² over all elements of all tensors (f64 on the CPU, fixed-order f32 on CUDA), returned on
// the host: the global gradient norm is its square root. Also reports whether any element was
// not finite (fp16 loss scaling skips such steps).
SPECTRA_OP(double, sum_squares, const std::vector<Tensor>& xs, bool* nonfinite)
}  // namespace spectra::kernels
