// Fused softmax cross-entropy over the vocabulary: loss[n] = lse[n] − logits[n, target[n]],
// lse[n] = log Σ_v exp(logits[n, v]). A negative target is ignored (loss 0, no gradient).
// logits: [N, V]; targets: [N] i32; loss, lse: [N] acc dtype. No probabilities are stored: the
// backward pass recomputes them from lse.
#pragma once
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, cross_entropy_forward, const Tensor& logits, const Tensor& targets, Tensor& loss,
           Tensor& lse)
// dlogits[n, v] += dloss[n] · (exp(logits[n, v] − lse[n]) − [v == target[n]]); dloss: [N] acc.
SPECTRA_OP(void, cross_entropy_backward, const Tensor& logits, const Tensor& targets,
           const Tensor& lse, const Tensor& dloss, Tensor& dlogits)
}  // namespace spectra::kernels
