// The communication points of Megatron tensor parallelism as differentiable ops (Shoeybi et al.
// 2019, the f and g operators): a column-parallel layer's input passes through tp_copy (forward:
// identity; backward: all-reduce the gradient over the TP group) and a row-parallel layer's
// output through tp_reduce (forward: all-reduce; backward: identity).
#pragma once
#include "autograd/ops.h"
#include "autograd/var.h"
#include "dist/group.h"

namespace spectra::ag {

Var tp_copy(const Var& x, const dist::Group& tp);
Var tp_reduce(const Var& x, const dist::Group& tp);

// Mean cross-entropy over logits split by vocabulary across the TP group: this rank holds
// columns [vocab_offset, vocab_offset + V) of every row; targets are ids in the whole
// vocabulary. Each rank computes its shard's log-sum-exp; the group combines them (a max and a
// sum over [N] values, not the logits) and the target's logit comes from the rank that holds it.
// The value and the per-token losses are the whole vocabulary's on every rank; the gradient of
// each rank's logits is its shard of the whole one. tp of size 1: cross_entropy().
Var vocab_parallel_cross_entropy(const Var& logits, const Tensor& targets, int64_t vocab_offset,
                                 const dist::Group& tp, Tensor* token_losses = nullptr);

}  // namespace spectra::ag
