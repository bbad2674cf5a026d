// What a recipe will do, before it runs: parameter count, training FLOPs per token and a memory
// estimate per GPU for its layout (used by `spectra inspect` and `spectra train --dry-run`).
//
// Memory per GPU (bytes), P = the parameters one rank holds: the 7 block projections and the
// vocabulary-parallel embedding and LM head split over tp, the norms replicated:
//   P           = L·(4d² + 3·d·ffn)/tp + 2·rows·d/tp + (2L + 1)·d
//   master      = 4·P                       f32 master weights
//   compute     = c·P                       the copy a step computes with (c = 2 for bf16/fp16);
//                                           in f32 only TriLM has one: its ternary projections
//   grads       = 4·P                       f32 gradients
//   optimizer   = 8·P / (zero ? dp : 1)     AdamW m and v in f32 (ZeRO-1 shards them over dp)
//   activations = c·b·s·[L·(4d + (4d + 3·ffn)/tp) + 2d + 2·rows/tp]
// Activations are those a micro-batch (b sequences of s tokens, no recomputation) saves for the
// backward pass, per layer and token: the block input, the two norm outputs and the residual
// between them (4d, replicated under TP), and, split over tp, q, k, v and the attention output
// (4d: flash-style attention keeps only these and a per-head log-sum-exp) and SwiGLU's gate, up
// and product (3·ffn); then the final norm's input and output (2d) and the logits with their
// gradient (2·rows/tp). Not counted: transient workspaces, communication buffers, allocator
// fragmentation and the CUDA context (allow a few GiB).
#pragma once
#include <cstdint>
#include <string>

#include "train/recipe.h"

namespace spectra {

// 4 significant digits and a suffix, as SPECTRA.md's table prints counts: "99.74M", "1.149B".
std::string format_params(int64_t n);

struct MemoryPlan {
  int dp = 1;               // the data-parallel size assumed (1 when the recipe says auto)
  int64_t rank_params = 0;  // P above
  double master = 0, compute = 0, grads = 0, optimizer = 0, activations = 0;  // bytes
  double total() const { return master + compute + grads + optimizer + activations; }
};
// dp 0: the recipe's parallel.dp (auto counts as 1: ZeRO-1 then shards nothing).
MemoryPlan plan_memory(const Recipe& r, int dp = 0);

// A few lines: kind and shape, parameters, FLOPs per token, layout, memory per GPU.
std::string describe_model(const Recipe& r);

}  // namespace spectra
