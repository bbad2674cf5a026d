// The training loop: builds the model on the recipe's device, draws batches, accumulates
// gradients over micro-batches, steps AdamW on the staged schedule, logs progress (rank 0: step,
// loss, lr, grad norm, tokens/s, ETA) and JSONL metrics, evaluates the held-out loss, samples
// text, and writes the trained model. Checkpoints every checkpoint.interval steps, at the end,
// and on SIGTERM/SIGUSR1 (then it returns early); resumes from one with TrainOptions::resume.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "train/recipe.h"

namespace spectra {

struct TrainSummary {
  int64_t steps = 0;
  std::vector<double> losses;  // training loss per step
  double val_loss = 0;         // nats per token on the held-out split
  double tokens_per_second = 0;
  std::string sample;
  bool stopped = false;  // ended early on SIGTERM/SIGUSR1, after checkpointing
};

struct TrainOptions {
  std::string resume;   // "" (start fresh), "auto" (newest valid checkpoint) or a checkpoint path
  int64_t stop_at = 0;  // > 0: checkpoint and return after this step (time-limited allocations)
};

TrainSummary train(const Recipe& recipe, const TrainOptions& options = {});

}  // namespace spectra
