// The optimizer step of a model, with data parallelism applied from this one place: a
// dist::DataParallel engine connected to the model's segment hooks (so gradient reduces overlap
// the backward pass and weight gathers the next forward), ZeRO-2's gradient ring bound into the
// model, ZeRO-3's replicated weights too (the model's masters move into the engine's shards), and
// AdamW over the pieces of the parameters this rank owns.
//
//   Optimizer opt(lm, r.optimizer, fp16, &topo.dp_group, {zero, bucket, overlap});
//   for (micro ...) {
//     opt.begin_micro_batch(micro + 1 == accum);
//     ag::backward(lm.loss(...), opt.scaler().scale / accum);
//   }
//   StepStats s = opt.step(lr, weight_decay);
#pragma once
#include <functional>
#include <memory>

#include "dist/data_parallel.h"
#include "layers/lm.h"
#include "train/adamw.h"

namespace spectra {

// The recipe's parallel.zero, parallel.bucket_mb and parallel.overlap.
dist::DataParallelOptions data_parallel_options(const Recipe& r);

class Optimizer : private SegmentHooks {
 public:
  // dp: the data-parallel group (null: one replica). The model's TP group comes from the model.
  Optimizer(LM& model, const Recipe::Optimizer& cfg, bool fp16_loss_scaling,
            const dist::Group* dp = nullptr, const dist::DataParallelOptions& options = {});
  ~Optimizer() override;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Before each micro-batch's forward pass: gradients are reduced after the last one only
  // (every one under ZeRO-2).
  void begin_micro_batch(bool last);
  // Reduces the gradients, steps AdamW, starts the gather of the updated weights (ZeRO), and
  // zeroes the gradients.
  StepStats step(double lr, double weight_decay);
  // Completes the gather of the updated weights: before reading them outside a forward pass.
  void sync_weights();

  const LossScaler& scaler() const { return adamw_.scaler(); }
  int64_t steps_taken() const { return adamw_.steps_taken(); }
  dist::DataParallel& data_parallel() { return *engine_; }

  // The AdamW moment m (which 0) or v (1) over the whole arena, in arena order: under ZeRO a
  // collective over dp that assembles it in host memory on dp rank 0 only (undefined elsewhere).
  Tensor full_moment(int which) const;
  // The latent weights over the whole arena, in arena order: the model's master arena, or under
  // ZeRO-3 (where no rank holds them all) assembled as full_moment is.
  Tensor full_weights() const;
  // Resumes from whole-arena weights and moments (this rank keeps its parts; the model's compute
  // copies follow), the step count and the scaler; the gradients are zeroed.
  void restore(const Tensor& w_full, const Tensor& m_full, const Tensor& v_full, int64_t steps,
               const LossScaler& s);

 private:
  void before_forward(int segment) override;
  void backward_begins(int segment) override;
  void gradients_ready(int segment) override;
  // After the weights of arena range [begin, end) changed or arrived: the model's compute copies.
  void refresh(int64_t begin, int64_t end);

  LM& model_;
  std::unique_ptr<dist::DataParallel> engine_;
  std::function<void(int64_t, int64_t)> refresh_;
  AdamW adamw_;
};

}  // namespace spectra
