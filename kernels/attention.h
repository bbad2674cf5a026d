// Causal multi-head attention (no grouped KV), softmax(q·kᵀ·scale + causal mask) · v.
// q: [B, Tq, H, Dh]; k, v: [B, Tk, H, Dh] with Tq <= Tk: query t sits at position Tk - Tq + t and
// attends keys 0..Tk-Tq+t (Tq < Tk serves generation with a cache). o: [B, Tq, H, Dh].
// lse: [B, H, Tq] in acc dtype, the log-sum-exp of each query's scaled scores, saved for the
// backward pass, which recomputes the probabilities from it (flash-attention style).
// CUDA: `impl` picks the implementation (kernels/attention_impl.h; the CPU ignores it):
// reference takes head_dim 32, 64 and 128 in any float dtype; flash and cudnn need bf16 or f16.
// Every implementation stores lse in natural log, so one's forward pairs with another's backward.
#pragma once
#include "kernels/attention_impl.h"
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, attention_forward, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
           Tensor& o, Tensor& lse, AttentionImpl impl = AttentionImpl::reference)
// Requires Tq == Tk. dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v.
SPECTRA_OP(void, attention_backward, const Tensor& dout, const Tensor& q, const Tensor& k,
           const Tensor& v, const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
           Tensor& dv, AttentionImpl impl = AttentionImpl::reference)
}  // namespace spectra::kernels
