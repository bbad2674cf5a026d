// The optimizer step: data-parallel gradient reduction, the global gradient norm and clipping,
// AdamW over every parameter in one kernel call, and (fp16) dynamic loss scaling.
//
// Gradients accumulate in the model's flat gradient arena over micro-batches; step() consumes
// and zeroes them. With a data-parallel group of D ranks:
//   zero 0: the arena is all-reduced in buckets, and every rank updates every parameter;
//   zero 1: the arena is reduce-scattered, each rank keeps AdamW state for 1/D of the arena and
//           updates that shard, and the new weights are all-gathered (ZeRO stage 1).
// Each rank's gradients are means over its micro-batches, so the reduced sum is divided by D.
#pragma once
#include <vector>

#include "dist/group.h"
#include "kernels/adamw.h"
#include "layers/lm.h"
#include "train/recipe.h"

namespace spectra {

// fp16 training multiplies the loss by a scale so small gradients survive the 16-bit backward
// pass; a step with inf/NaN gradients is skipped and the scale halved, and after
// `growth_interval` clean steps it doubles. For f32/bf16 the scale stays 1.
struct LossScaler {
  bool enabled = false;
  double scale = 1.0;
  int64_t clean_steps = 0;
  int64_t growth_interval = 1000;
  void update(bool overflow);
};

struct StepStats {
  double grad_norm = 0;  // of the unscaled, data-parallel-mean gradient, before clipping
  bool skipped = false;  // non-finite gradients (fp16 overflow)
};

class AdamW {
 public:
  // dp: the data-parallel group (nullptr: a single replica). zero 1 needs the model's arenas
  // padded to a multiple of the group size (LayerOptions::arena_multiple). Under tensor
  // parallelism (the model's TP group) each TP rank updates its own shards; the gradient norm
  // is the whole model's.
  AdamW(LM& model, const Recipe::Optimizer& cfg, bool fp16_loss_scaling,
        const dist::Group* dp = nullptr, int zero = 0);
  StepStats step(double lr, double weight_decay);
  const LossScaler& scaler() const { return scaler_; }
  int64_t steps_taken() const { return step_; }

  // The AdamW moment m (which 0) or v (1) over the whole parameter arena, in arena order. Under
  // ZeRO-1 a collective over dp that gathers the shards into host memory on dp rank 0 only (the
  // rank that saves), returning an undefined tensor elsewhere: no rank holds the whole state on
  // its GPU.
  Tensor full_moment(int which) const;
  // Resumes from a checkpoint: full-arena moments (this rank keeps its shard), the step count
  // and the loss scaler.
  void restore(const Tensor& m_full, const Tensor& v_full, int64_t steps, const LossScaler& s);

 private:
  void reduce_gradients();
  double tp_sum_squares(bool& nonfinite) const;

  LM& model_;
  Recipe::Optimizer cfg_;
  const dist::Group* dp_;
  const dist::Group* tp_;  // null without tensor parallelism
  int zero_;
  int64_t lo_ = 0, hi_ = 0;  // the arena range this rank updates
  Tensor m_, v_, grad_shard_;
  std::vector<kernels::AdamWTensor> segments_;
  std::vector<bool> segment_split_;  // the segment's parameter is split over the TP group
  LossScaler scaler_;
  int64_t step_ = 0;
};

}  // namespace spectra
