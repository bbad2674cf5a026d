// AdamW, exactly as torch.optim.AdamW computes it, on the pieces of the model it is given (the
// whole model, or the shard a data-parallel rank owns: it does not know which), with clipping
// by the global gradient norm and fp16's dynamic loss scaling. The gradients arrive reduced by
// dist::DataParallel (train/optimizer.h connects the two).
#pragma once
#include <vector>

#include "kernels/adamw.h"
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

// One run of elements AdamW updates: weights, their gradients, where its moments lie in the
// state (`state` .. + numel), and the 16-bit compute copy to write alongside (may be undefined).
struct AdamWPiece {
  Tensor param, grad, compute;
  int64_t state = 0;
  bool decay = true;
};

class AdamW {
 public:
  // The moments m and v are [state_elements] f32 on `device`.
  AdamW(const std::vector<AdamWPiece>& pieces, int64_t state_elements, Device device,
        const Recipe::Optimizer& cfg, bool fp16_loss_scaling);

  // sum_squares: Σ grad² of the whole model's gradients as they are (summed over `replicas`,
  // carrying the loss scale); nonfinite: any of them is inf/NaN. Skips the update on overflow.
  StepStats step(double lr, double weight_decay, double sum_squares, bool nonfinite, int replicas);

  const LossScaler& scaler() const { return scaler_; }
  int64_t steps_taken() const { return step_; }
  // m (which 0) or v (1), [state_elements].
  const Tensor& moment(int which) const { return which == 0 ? m_ : v_; }
  void restore(const Tensor& m, const Tensor& v, int64_t steps, const LossScaler& s);

 private:
  Recipe::Optimizer cfg_;
  Tensor m_, v_;
  std::vector<kernels::AdamWTensor> segments_;
  LossScaler scaler_;
  int64_t step_ = 0;
};

}  // namespace spectra
