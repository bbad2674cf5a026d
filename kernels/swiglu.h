// SwiGLU's gating: out = silu(gate) · up, silu(a) = a · sigmoid(a). gate, up, out: same shape.
#pragma once
#include <cmath>

#include "core/hd.h"
#include "kernels/op.h"

namespace spectra::kernels {

SPECTRA_HD float sigmoid(float a) { return 1.f / (1.f + expf(-a)); }
SPECTRA_HD double sigmoid(double a) { return 1. / (1. + exp(-a)); }
// Forward value, and the two partials given the upstream gradient d.
template <typename T>
SPECTRA_HD T swiglu_value(T gate, T up) {
  return gate * sigmoid(gate) * up;
}
template <typename T>
SPECTRA_HD void swiglu_grad(T gate, T up, T d, T& dgate, T& dup) {
  T s = sigmoid(gate);
  dup = d * gate * s;
  dgate = d * up * s * (T(1) + gate * (T(1) - s));
}

SPECTRA_OP(void, swiglu_forward, const Tensor& gate, const Tensor& up, Tensor& out)
// dgate += ∂L/∂gate, dup += ∂L/∂up.
SPECTRA_OP(void, swiglu_backward, const Tensor& dout, const Tensor& gate, const Tensor& up,
           Tensor& dgate, Tensor& dup)

}  // namespace spectra::kernels
