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

Shape Split::local_shape(Shape full) const {
  if (axis >= 0) full[size_t(axis)] /= parts;
  return full;
}

int64_t Split::full_index(const Shape& full, int64_t i) const {
  if (axis < 0 || parts == 1) return i;
  if (axis == 0) return int64_t(index) * (shape_numel(full) / parts) + i;  // a block of rows
  const int64_t cols = full[1], local_cols = cols / parts;
  return i / local_cols * cols + int64_t(index) * local_cols + i % local_cols;
}

Tensor Split::unshard(const Tensor& gathered, const Shape& full) const {
  if (axis < 0 || parts == 1) return gathered.view(full);
  Tensor g = gathered.to(Device::cpu()).to(DType::f64);
  Tensor out = Tensor::empty(full, DType::f64);
  const int64_t local = shape_numel(full) / parts;
  for (int r = 0; r < parts; r++) {
    Split s{axis, parts, r};
    for (int64_t i = 0; i < local; i++)
      out.data<double>()[s.full_index(full, i)] = g.data<double>()[r * local + i];
  }
  return out.to(gathered.dtype());
}

Tensor full_tensor(const Parameter& p, const Tensor& local, const dist::Group* tp) {
  if (p.split.parts == 1) return local.to(Device::cpu());
  SPECTRA_CHECK(tp && tp->size() == p.split.parts, "full_tensor: {} parts but no such TP group",
                p.split.parts);
  Tensor flat = local.to(Device::cpu()).view({local.numel()});
  Tensor gathered = Tensor::empty({local.numel() * p.split.parts}, local.dtype());
  tp->all_gather(flat, gathered);
  return p.split.unshard(gathered, p.full);
}

Parameter& Module::add_parameter(std::string name, Shape full, Init init, bool decay, bool ternary,
                                 Split split) {
  auto p = std::make_unique<Parameter>();
  p->shape = split.local_shape(full);
  p->full = std::move(full);
  p->split = split;
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
