#include "layers/module.h"

namespace spectra {

std::vector<Module::NamedParameter> Module::named_parameters(const std::string& prefix) const {
  std::vector<NamedParameter> out;
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p.get());
  for (const auto& [name, child] : children_) {
    auto sub = child->named_parameters(prefix + name + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

Parameter& Module::add_parameter(std::string name, Shape shape, Init init, bool decay,
                                 bool ternary) {
  auto p = std::make_unique<Parameter>();
  p->shape = std::move(shape);
  p->init = init;
  p->decay = decay;
  p->ternary = ternary;
  params_.emplace_back(std::move(name), std::move(p));
  return *params_.back().second;
}

void Module::add_child(std::string name, Module* child) {
  children_.emplace_back(std::move(name), child);
}

}  // namespace spectra
