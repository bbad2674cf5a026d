// Fused softmax cross-entropy over the vocabulary: loss[n] = lse[n] − logits[n, target[n]],
// lse[n] = log Σ_v exp(logits[n, v]). A negative target is ignored (loss 0, no gradient).
// logits: [N, V]; targets: [N] i32; loss, lse: [N] acc dtype. No probabilities are stored: the
// backward pass recomputes them from lse.
// Vocabulary-parallel shards: logits are columns [vocab_offset, vocab_offset + V) of the whole
// vocabulary (offset 0 and V = all of it without tensor parallelism) and targets are ids in the
// whole vocabulary. A target outside the shard belongs to another rank's columns: its row gets
// loss[n] = lse[n] (no target term) and the softmax part of the gradient only. lse is this
// shard's; autograd/parallel.cpp combines the shards'.
#pragma once
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, cross_entropy_forward, const Tensor& logits, const Tensor& targets,
           int64_t vocab_offset, Tensor& loss, Tensor& lse)
// dlogits[n, v] += dloss[n] · (exp(logits[n, v] − lse[n]) − [v + vocab_offset == target[n]]);
// lse: the whole vocabulary's; dloss: [N] acc.
SPECTRA_OP(void, cross_entropy_backward, const Tensor& logits, const Tensor& targets,
           int64_t vocab_offset, const Tensor& lse, const Tensor& dloss, Tensor& dlogits)

// The mean loss without a trip to the host: mean[0] = Σ_n loss[n] / count[0], with
// count[0] = max(1, #{n : target[n] >= 0}) (ignored rows hold loss 0, so a batch with no target
// has mean 0). loss [N], mean and count [1], all acc dtype. A fixed-order sum: deterministic.
SPECTRA_OP(void, cross_entropy_mean, const Tensor& loss, const Tensor& targets, Tensor& mean,
           Tensor& count)
// dloss[n] = dmean[0] / count[0] for every row (cross_entropy_backward drops ignored rows).
SPECTRA_OP(void, cross_entropy_mean_backward, const Tensor& dmean, const Tensor& count,
           Tensor& dloss)
}  // namespace spectra::kernels
