// Linear projection without bias, y = x · Wᵀ, W [out, in]. With `ternary` it is the TriLM layer
// of SPECTRA.md: the forward pass uses γ·round(clamp(W/γ, -1, 1)), γ = eps + mean|W| over this
// (shard of the) matrix, and the latent f32 W learns through the straight-through estimator.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "dist/group.h"
#include "kernels/ternary_packed.h"
#include "layers/module.h"

namespace spectra {

struct LayerOptions {
  DType param_dtype = DType::f32;  // master weights
  Device device;
  // The tensor-parallel group (null: none). Layers split their weights over it, Megatron style.
  const dist::Group* tp = nullptr;

  int tp_size() const { return tp ? tp->size() : 1; }
  int tp_rank() const { return tp ? tp->rank() : 0; }
};

// Megatron's two ways to split a projection over the TP group: column-parallel splits the
// output features (W's rows; the input is replicated), row-parallel the input features (W's
// columns; the outputs are partial sums, all-reduced).
enum class TpSplit : uint8_t { none, column, row };

class Linear : public Module {
 public:
  // ternary_shards: TriLM scales per full matrix, in blocks along the TP split (a multiple of
  // the TP size: each rank's shard has ternary_shards / tp of them).
  Linear(int64_t in, int64_t out, bool ternary, float ternary_eps, TpSplit split,
         const LayerOptions& opt, int64_t ternary_shards = 1);
  // x: [N, in] (column / none) or [N, in/tp] (row) -> [N, out/tp] (column) or [N, out].
  ag::Var forward(const ag::Var& x) const;
  Parameter& weight() { return *weight_; }
  const Parameter& weight() const { return *weight_; }
  bool ternary() const { return ternary_; }
  // Inference on packed weights (kernels/ternary_packed.h), on the CPU, without tensor
  // parallelism, no gradients from then on. A TriLM projection packs its weight to 2-bit codes
  // once and frees its latent master; forward() then multiplies with the codes in `mode`. A float
  // projection (the LM head) changes only in the int8 mode: its rows become int8 (and its f32
  // master is freed). Repeated calls change the mode, except back from int8 for a float one.
  void pack(kernels::Activations mode);
  const kernels::PackedTernary* packed() const { return packed_.get(); }
  const kernels::Int8Matrix* int8_rows() const { return int8_.get(); }
  // Packed projections of one input (q, k and v; gate and up): forward() of each, with the input
  // prepared once for all (kernels::packed_matmuls). All must be packed alike.
  static std::vector<ag::Var> forward_packed(const std::vector<const Linear*>& linears,
                                             const ag::Var& x);
  // Called with every input x the forward pass receives (post-training quantization collects
  // its calibration statistics this way); an empty function removes it.
  void set_input_observer(std::function<void(const Tensor& x)> observer) {
    observer_ = std::move(observer);
  }

 private:
  Parameter* weight_;
  std::function<void(const Tensor&)> observer_;
  bool ternary_;
  float eps_;
  TpSplit split_;
  const dist::Group* tp_;
  ag::TernaryScales scales_;
  std::shared_ptr<const kernels::PackedTernary> packed_;
  std::shared_ptr<const kernels::Int8Matrix> int8_;
  kernels::Activations activations_ = kernels::Activations::exact;
};

// The weight a projection computes with, in f32 on the host, from its full (unsharded) master
// `w`: γ·T per scale block (`ternary_shards` blocks along the parameter's TP split axis) for a
// TriLM projection, `w` itself otherwise. What exports write and imports must reproduce.
Tensor effective_weight(const Parameter& p, const Tensor& w, float ternary_eps,
                        int64_t ternary_shards);

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, float eps, const LayerOptions& opt);
  ag::Var forward(const ag::Var& x) const;
  // The residual add before the norm, fused with it: {x + r, norm(x + r)}.
  ag::AddNorm forward_added(const ag::Var& x, const ag::Var& r) const;

 private:
  Parameter* gain_;
  float eps_;
};

// Vocabulary-parallel under TP: each rank holds rows/tp rows, looks up the ids that fall in
// them (zeros elsewhere), and the group sums the outputs.
class Embedding : public Module {
 public:
  Embedding(int64_t rows, int64_t dim, const LayerOptions& opt);
  ag::Var forward(const Tensor& ids) const;

 private:
  Parameter* table_;
  const dist::Group* tp_;
  int64_t offset_;  // the first row this rank holds
};

}  // namespace spectra
