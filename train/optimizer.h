// The optimizer step: global gradient norm, clipping, AdamW over every parameter in one kernel
// call, and (fp16) dynamic loss scaling. Gradients accumulate in the parameters' f32 buffers
// over micro-batches; step() consumes and zeroes them.
#pragma once
#include <vector>

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
  double grad_norm = 0;  // of the unscaled gradient, before clipping
  bool skipped = false;  // non-finite gradients (fp16 overflow)
};

class AdamW {
 public:
  AdamW(LM& model, const Recipe::Optimizer& cfg, bool fp16_loss_scaling);
  StepStats step(double lr, double weight_decay);
  const LossScaler& scaler() const { return scaler_; }
  int64_t steps_taken() const { return step_; }

 private:
  LM& model_;
  Recipe::Optimizer cfg_;
  std::vector<kernels::AdamWTensor> tensors_;
  std::vector<Tensor> grads_;
  LossScaler scaler_;
  int64_t step_ = 0;
};

}  // namespace spectra
