// Module: a node of the model tree with named parameters and named children. Names compose with
// dots along the tree, matching Hugging Face's LlamaForCausalLM
// ("model.layers.3.mlp.up_proj.weight"), so exports need no renaming table.
//
// A Parameter is a view into its model's two flat arenas: the f32 master weights and the f32
// gradients (one allocation each, so data-parallel reductions and ZeRO sharding work on whole
// buckets). When the model computes in a 16-bit dtype, `compute` holds the copy the forward pass
// reads (the optimizer refreshes it each step). Modules declare shapes; the model allocates.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "core/tensor.h"

namespace spectra {

enum class Init : uint8_t { normal, ones };

struct Parameter {
  Shape shape;
  Tensor master;   // f32 (f64 in gradient-check models)
  Tensor grad;     // same dtype as master
  Tensor compute;  // undefined when the model computes in the master's dtype
  Init init = Init::normal;
  bool decay = true;     // weight decay applies (not to norms)
  bool ternary = false;  // a TriLM projection: quantized in the forward pass

  // The Var the forward pass uses: the compute copy (or master), with this parameter's gradient.
  ag::Var var() const { return ag::Var::with_grad(compute.defined() ? compute : master, grad); }
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
  Parameter& add_parameter(std::string name, Shape shape, Init init, bool decay, bool ternary);
  void add_child(std::string name, Module* child);

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
};

// A Module that only groups children under a name ("model", "model.layers").
class ModuleGroup : public Module {
 public:
  using Module::add_child;
};

}  // namespace spectra
