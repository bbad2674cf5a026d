// What a recipe will do, before it runs: parameter count, training FLOPs per token and a memory
// estimate per GPU for its layout (`spectra inspect`), and the whole training plan for a world of
// N GPUs: layout, batch split, steps, schedule values, memory fit, time (`spectra train
// --dry-run`).
//
// Memory per GPU (bytes), P = the parameters one rank holds: the 7 block projections and the
// vocabulary-parallel embedding and LM head split over tp, the norms replicated:
//   P           = L·(4d² + 3·d·ffn)/tp + 2·rows·d/tp + (2L + 1)·d
//   master      = 4·P                       f32 master weights
//   compute     = c·P                       the copy a step computes with (c = 2 for bf16/fp16);
//                                           in f32 only TriLM has one: its ternary projections
//   grads       = 4·P                       f32 gradients; ZeRO-1 adds the reduced shard (S, about
//                                           P/dp); ZeRO-2 holds 4·(2·S + 2·bucket) instead: the
//                                           shard, its incoming part and a two-bucket ring
//   optimizer   = 8·S                       AdamW m and v in f32 (S = P without ZeRO)
// ZeRO-3 keeps no whole master: master = 4·S for the latent shard + 4·F for the float parameters
// (F: embedding, LM head and norms of a TriLM, all of a FloatLM), replicated in f32; a TriLM's
// compute copy holds the projections of two buckets (c·2·blocks in the largest bucket·(4d² +
// 3·d·ffn)/tp, plus c·F in 16 bits), and codes = every projection's 2-bit codes, rows padded to
// 256 columns (about P/16 bytes). S comes from near-even parts; the engine cuts them at row
// boundaries, a row's difference at most.
// P, S and the buckets come from the model's and the data-parallel engine's own layout rules
// (LM::arena_layout, dist::plan_buckets), so the plan holds what a run allocates.
//   activations = c·b·s·[L·(4d + (4d + 3·ffn)/tp) + 2d + 2·rows/tp]
// With train.recompute: full, L·(4d + (4d + 3·ffn)/tp) becomes L·d + (4d + (4d + 3·ffn)/tp): each
// block's input, and one block's activations while its backward recomputes them.
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
#include <vector>

#include "train/recipe.h"

namespace spectra {

// 4 significant digits and a suffix, as SPECTRA.md's table prints counts: "99.74M", "1.149B".
std::string format_params(int64_t n);

struct MemoryPlan {
  int dp = 1;               // the data-parallel size assumed (1 when the recipe says auto)
  int64_t rank_params = 0;  // P above
  int64_t buckets = 0, largest_bucket = 0;  // the data-parallel engine's (elements)
  double master = 0, compute = 0, codes = 0, grads = 0, optimizer = 0, activations = 0;  // bytes
  double total() const { return master + compute + codes + grads + optimizer + activations; }
};
// dp 0: the recipe's parallel.dp (auto counts as 1: ZeRO-1 then shards nothing).
MemoryPlan plan_memory(const Recipe& r, int dp = 0);

// A few lines: kind and shape, parameters, FLOPs per token, layout, memory per GPU.
std::string describe_model(const Recipe& r);

struct PlanOptions {
  int world = 0;  // GPUs to plan for; 0: the smallest world the recipe runs on, tp x max(dp, 1)
  double gpu_memory_gib = 80;
  double tokens_per_second_per_gpu = 0;  // 0: not known, no time estimate
};

// The schedule at a fraction of training. `step` is 1-based, as the trainer logs it: the first
// step whose start ((step - 1) / steps) is at or after the fraction, so a stage starting there is
// already in force (TriLM: the reduced peak at 50%, weight decay 0 at 66.7%); 100% is the last.
struct SchedulePoint {
  double fraction = 0;
  int64_t step = 1;
  double lr = 0, weight_decay = 0;
};

struct TrainingPlan {
  int world = 1, tp = 1, dp = 1;
  int64_t micro_batch = 1, accumulation = 1;  // global_batch = micro_batch x dp x accumulation
  int64_t steps = 0, tokens_per_step = 0, total_tokens = 0;
  int64_t parameters = 0;  // with the real vocabulary, as SPECTRA.md counts
  double flops_per_token = 0;
  std::vector<SchedulePoint> schedule;  // at 0%, 25%, 50%, 66.7% and 100%
  MemoryPlan memory;
  double gpu_memory = 0;         // bytes available per GPU
  double tokens_per_second = 0;  // per GPU, as given (PlanOptions)
  double seconds = 0;            // estimated wall time; 0 when no tokens/s per GPU was given
  bool fits() const { return memory.total() <= gpu_memory; }
};

// Throws a UserError (one line naming the keys) when the world cannot be laid out as tp x dp or
// the global batch does not split into micro-batches over dp. A plan that does not fit the GPU
// memory is returned as such (fits() false): require_fit() turns that into the error.
TrainingPlan plan_training(const Recipe& r, const PlanOptions& o = {});
void require_fit(const TrainingPlan& p, const Recipe& r);

// The plan as an aligned block (describe_model's first lines, then the plan). `data`, when
// given, describes the opened training data (BatchSource::describe) holding `data_tokens`
// training tokens, and the plan adds how many passes over them the run makes.
std::string describe_plan(const TrainingPlan& p, const Recipe& r, const std::string& data = "",
                          int64_t data_tokens = 0);

}  // namespace spectra
