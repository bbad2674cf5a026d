// The training loop: builds the model on the recipe's device, draws batches, accumulates
// gradients over micro-batches, steps AdamW on the staged schedule, logs progress (rank 0: step,
// loss, lr, grad norm, tokens/s, ETA) and JSONL metrics, evaluates the held-out loss, samples
// text, and writes the trained model.
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
};

// Where and in what precision a recipe runs: train.device (auto picks cuda when a GPU is
// present) and train.precision, validated together.
struct Placement {
  Device device;
  DType compute_dtype = DType::f32;
};
Placement resolve_placement(const Recipe& r);

TrainSummary train(const Recipe& recipe);

}  // namespace spectra
