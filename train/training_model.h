// The model a run trains and its optimizer, built from a recipe and a placement in this one
// place for the trainer and every benchmark, so they all train the same thing:
//   - the LM on the placement's device and compute dtype, split over the TP group;
//   - its weights from train.seed, or train.init's model file;
//   - train.recompute;
//   - the optimizer with the recipe's AdamW settings, its data parallelism over the DP group
//     (parallel.zero, parallel.bucket_mb, parallel.overlap), and dynamic loss scaling when the
//     compute dtype is fp16.
//
//   TrainingModel t = build_training_model(r, resolve_placement(r), &topo);
//   ag::backward(t.model->loss(ids, targets, b, s), t.optimizer->scaler().scale);
//   t.optimizer->step(lr, wd);
#pragma once
#include <memory>

#include "dist/topology.h"
#include "train/optimizer.h"
#include "train/placement.h"

namespace spectra {

struct TrainingModel {
  std::unique_ptr<LM> model;
  std::unique_ptr<Optimizer> optimizer;  // declared after the model: destroyed before it
};

// topo: the job's grid (null: one process). Makes the placement's GPU the current device.
TrainingModel build_training_model(const Recipe& r, const Placement& p,
                                   const dist::Topology* topo = nullptr);

}  // namespace spectra
