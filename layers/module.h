// Module: a node of the model tree with named parameters and named children. Names compose with
// dots along the tree, matching Hugging Face's LlamaForCausalLM
// ("model.layers.3.mlp.up_proj.weight"), so exports need no renaming table.
//
// A Parameter is a view into its model's two flat arenas: the f32 master weights and the f32
// gradients (one allocation each, so data-parallel reductions and ZeRO sharding work on whole
// buckets). When the model computes in a 16-bit dtype, `compute` holds the copy the forward pass
// reads, refreshed once per optimizer step: the weight cast, or for a TriLM projection its
// quantization (the trits with γ in `gamma`, or γ·T with several scales), so no forward pass
// quantizes. Modules declare shapes; the model allocates.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "autograd/var.h"
#include "core/tensor.h"
#include "dist/group.h"

namespace spectra {

enum class Init : uint8_t { normal, ones };

// How a parameter is split across the tensor-parallel group: this rank holds part `index` of
// `parts` equal blocks of dimension `axis` (0: rows, 1: columns) of the full tensor; axis -1:
// replicated. Checkpoints and model files hold full tensors; these map between the two.
struct Split {
  int axis = -1;
  int parts = 1, index = 0;

  Shape local_shape(Shape full) const;
  // The full tensor's flat index of this rank's local element i.
  int64_t full_index(const Shape& full, int64_t local_i) const;
  // The full tensor from every rank's block, concatenated in rank order ([parts·local] as an
  // all-gather along dim 0 delivers them).
  Tensor unshard(const Tensor& gathered, const Shape& full) const;
};

struct Parameter {
  Shape shape;  // this rank's (local) shape
  Shape full;   // the whole tensor's shape (the same when replicated)
  Split split;
  Tensor master;   // f32 (f64 in gradient-check models)
  Tensor grad;     // same dtype as master
  Tensor compute;  // undefined when the model computes in the master's dtype
  Init init = Init::normal;
  bool decay = true;         // weight decay applies (not to norms)
  bool ternary = false;      // a TriLM projection: quantized in the forward pass
  ag::TernaryScales scales;  // a TriLM projection's scale blocks
  Tensor gamma;              // f32 [scales.groups]: the scales of `compute`'s trits

  // The Var the forward pass uses: the compute copy (or master), with this parameter's gradient
  // (a constant when it has none: a model packed for inference, LM::pack_ternary).
  ag::Var var() const {
    const Tensor& value = compute.defined() ? compute : master;
    return grad.defined() ? ag::Var::with_grad(value, grad) : ag::Var(value);
  }
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  using NamedParameter = std::pair<std::string, Parameter*>;
  // Every parameter of this module and its descendants, in registration order.
  std::vector<NamedParameter> named_parameters(const std::string& prefix = "") const;

 protected:
  // `full` is the whole tensor's shape; the parameter holds split's block of it.
  Parameter& add_parameter(std::string name, Shape full, Init init, bool decay, bool ternary,
                           Split split = {});
  void add_child(std::string name, Module* child);

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
};

// A parameter's full tensor on the host from this rank's `local` part of it (its master, a
// gradient, an optimizer moment): gathered over the TP group when split (a collective: every
// rank of the group calls it), else `local` itself.
Tensor full_tensor(const Parameter& p, const Tensor& local, const dist::Group* tp);

// A Module that only groups children under a name ("model", "model.layers").
class ModuleGroup : public Module {
 public:
  using Module::add_child;
};

}  // namespace spectra
