// The TriLM quantizer (SPECTRA.md): for a weight matrix W (or one tensor-parallel shard of it)
//   γ = eps + mean(|W|)         one scalar per tensor given
//   T = clamp(round(W / γ), -1, 1) ∈ {-1, 0, +1}   (round half away from zero)
// and the layer computes y = x · (γ·T)ᵀ as matmul(x, T, alpha-scale γ). The backward pass is
// straight-through: the latent W receives the gradient of the effective weight γ·T.
#pragma once
#include <cmath>

#include "core/hd.h"
#include "kernels/op.h"

namespace spectra::kernels {

// One weight's trit: the shared per-element math of the CPU and CUDA quantizers.
SPECTRA_HD float ternary_trit(float w, float gamma) {
  float r = roundf(w / gamma);  // roundf rounds half away from zero
  return r > 1.f ? 1.f : (r < -1.f ? -1.f : r);
}
SPECTRA_HD double ternary_trit(double w, double gamma) {
  double r = round(w / gamma);
  return r > 1. ? 1. : (r < -1. ? -1. : r);
}
// γ from the f64 sum of |w| over the `count` weights of one scale block, rounded to f32 once (the
// trits then divide by that same γ, so γ·T is the weight used).
inline float ternary_gamma(double abs_sum, int64_t count, float eps) {
  return float(double(eps) + abs_sum / double(count > 0 ? count : 1));
}

// w: latent weights (f32; f64 on the CPU). Writes γ into gamma (one f32 element; the mean is
// accumulated in f64 on the CPU, in a fixed-order f32 tree on CUDA) and the trits into t (same
// shape as w; any float dtype: the trits are exact in all of them).
SPECTRA_OP(void, ternary_quantize, const Tensor& w, float eps, Tensor& t, Tensor& gamma)

// The same with `groups` scales per matrix: w [rows, cols] splits evenly along `axis` (0: blocks
// of rows, as column-parallel layers shard; 1: blocks of columns, as row-parallel layers do), and
// each block has its own γ. One process computes what `groups` tensor-parallel shards do, each
// with its own scale. Writes the effective weights, effective[i, j] = γ_g · trit (exact: one
// rounding of γ to the output dtype), and gamma [groups] f32. Each γ is summed as
// ternary_quantize sums one matrix, so groups = 1 gives its γ bit for bit.
SPECTRA_OP(void, ternary_quantize_groups, const Tensor& w, float eps, int64_t groups, int axis,
           Tensor& effective, Tensor& gamma)

namespace cpu {
// The γ of each of `groups` blocks of w (f32 or f64, on the CPU) split along `axis`, summed
// exactly as ternary_quantize_groups sums them (f64, fixed order): for CPU code that must hold
// the quantizer's scales bit for bit (the packed weight, kernels/ternary_packed.h).
void ternary_group_gammas(const Tensor& w, float eps, int64_t groups, int axis, float* gamma);
}  // namespace cpu

}  // namespace spectra::kernels
