// Differentiable ops over the kernels. Each runs its forward kernel and, if an input requires
// grad, records a backward closure on the tape (autograd/var.h). Shapes follow kernels/op.h:
// activations [N, d] (leading dims flattened), attention and RoPE [B, T, H, Dh].
#pragma once
#include "autograd/var.h"
#include "kernels/attention_impl.h"

namespace spectra::ag {

// y = x · wᵀ. x [N, in], w [out, in] -> y [N, out].
Var linear(const Var& x, const Var& w);
// How many scales γ a ternary weight has: one per block of `groups` equal blocks of rows (axis
// 0) or columns (axis 1). One process computes a tensor-parallel model's per-shard scales with
// groups = the shards, split the way the shards are.
struct TernaryScales {
  int64_t groups = 1;
  int axis = 0;
};
// The TriLM projection: w is the latent f32 weight; forward quantizes it (γ = eps + mean|w| per
// group, trits in x's dtype) and computes y = x · (γ·T)ᵀ; backward is straight-through:
// dx = dy · (γ·T), dw = dyᵀ · x. Returns γ through *gamma_out if given (tests, export).
// One group keeps the trits exact and applies γ in the matmul's f32 epilogue; several use the
// effective weights γ·T in x's dtype.
Var ternary_linear(const Var& x, const Var& w, float eps, TernaryScales scales = {},
                   Tensor* gamma_out = nullptr);
// ternary_linear with the quantization done beforehand (once per optimizer step: a parameter's
// compute copy): w's value is the trits (gamma one scale) or γ·T (several), and its gradient is
// the latent weight's, straight through.
Var quantized_linear(const Var& x, const Var& w, const Tensor& gamma);
Var rmsnorm(const Var& x, const Var& g, float eps);
// The residual add and the norm after it in one op: sum = x + r, normed = rmsnorm(sum, g).
struct AddNorm {
  Var sum, normed;
};
AddNorm add_rmsnorm(const Var& x, const Var& r, const Var& g, float eps);
Var swiglu(const Var& gate, const Var& up);
// x [B, T, H, Dh]; positions pos0 .. pos0+T-1.
Var rope(const Var& x, int64_t pos0, float theta);
// Causal attention, q/k/v [B, T, H, Dh], scale 1/sqrt(Dh); `impl` picks the CUDA kernels.
Var attention(const Var& q, const Var& k, const Var& v,
              kernels::AttentionImpl impl = kernels::AttentionImpl::reference);
// ids [N] i32 (no gradient), table [V, d] -> [N, d].
Var embedding(const Tensor& ids, const Var& table, int64_t vocab_offset = 0);
Var add(const Var& a, const Var& b);
// A reshape sharing value and gradient storage (no tape entry).
Var view(const Var& x, Shape shape);
// Mean cross-entropy over the targets that are >= 0. The value is a one-element tensor in the acc
// dtype on the logits' device: nothing waits for the host until somebody reads it (the training
// loop, once per step). Per-token losses are returned through *token_losses if given.
Var cross_entropy(const Var& logits, const Tensor& targets, Tensor* token_losses = nullptr);
// The LM head and cross_entropy in one: logits = x · wᵀ (x [N, d], w [V, d]) computed
// `chunk_rows` rows at a time and never held whole, in any dtype; the backward pass recomputes
// each chunk's logits from x and w (one more head GEMM) instead of keeping [N, V] of them.
// Computes cross_entropy(linear(x, w), targets) up to the order of dw's sum over the chunks.
Var linear_cross_entropy(const Var& x, const Var& w, const Tensor& targets, int64_t chunk_rows,
                         Tensor* token_losses = nullptr);
// Rows per chunk of linear_cross_entropy for a vocabulary of `vocab`: at most 2^26 logits
// (128 MiB in bf16) at a time, in multiples of 64 rows where that allows.
int64_t head_chunk_rows(int64_t vocab);
// Where a rank's logits sit in the vocabulary: columns [offset, offset + their width) of `vocab`.
struct VocabShard {
  int64_t offset = 0, vocab = 0;
};
// The mean loss as a Var, given the per-token losses and lse (the logits' device, acc dtype,
// whole vocabulary) of logits that are `shard`'s columns: shared by cross_entropy and the
// vocabulary-parallel one (autograd/parallel.h). Targets on the host are checked against the
// vocabulary here; the data loader checks those it sends to a GPU.
Var mean_cross_entropy(const Var& logits, const Tensor& targets, VocabShard shard,
                       const Tensor& losses, const Tensor& lse);

}  // namespace spectra::ag
