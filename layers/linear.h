// Linear projection without bias, y = x · Wᵀ, W [out, in]. With `ternary` it is the TriLM layer
// of SPECTRA.md: the forward pass uses γ·round(clamp(W/γ, -1, 1)), γ = eps + mean|W| over this
// (shard of the) matrix, and the latent f32 W learns through the straight-through estimator.
#pragma once
#include "layers/module.h"

namespace spectra {

struct LayerOptions {
  DType param_dtype = DType::f32;  // master weights
  Device device;
  int64_t arena_multiple = 1;  // pad the parameter arenas to a multiple (ZeRO shards evenly)
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool ternary, float ternary_eps, const LayerOptions& opt);
  ag::Var forward(const ag::Var& x) const;
  Parameter& weight() { return *weight_; }
  bool ternary() const { return ternary_; }

 private:
  Parameter* weight_;
  bool ternary_;
  float eps_;
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, float eps, const LayerOptions& opt);
  ag::Var forward(const ag::Var& x) const;

 private:
  Parameter* gain_;
  float eps_;
};

class Embedding : public Module {
 public:
  Embedding(int64_t rows, int64_t dim, const LayerOptions& opt);
  ag::Var forward(const Tensor& ids) const;

 private:
  Parameter* table_;
};

}  // namespace spectra
