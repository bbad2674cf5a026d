#include "layers/linear.h"

#include "autograd/ops.h"

namespace spectra {

Linear::Linear(int64_t in, int64_t out, bool ternary, float ternary_eps, const LayerOptions& opt)
    : ternary_(ternary), eps_(ternary_eps) {
  weight_ = &add_parameter("weight", {out, in}, Init::normal, /*decay=*/true, ternary);
}

ag::Var Linear::forward(const ag::Var& x) const {
  return ternary_ ? ag::ternary_linear(x, weight_->var(), eps_) : ag::linear(x, weight_->var());
}

RMSNorm::RMSNorm(int64_t dim, float eps, const LayerOptions& opt) : eps_(eps) {
  gain_ = &add_parameter("weight", {dim}, Init::ones, /*decay=*/false, false);
}

ag::Var RMSNorm::forward(const ag::Var& x) const { return ag::rmsnorm(x, gain_->var(), eps_); }

Embedding::Embedding(int64_t rows, int64_t dim, const LayerOptions& opt) {
  table_ = &add_parameter("weight", {rows, dim}, Init::normal, /*decay=*/true, false);
}

ag::Var Embedding::forward(const Tensor& ids) const { return ag::embedding(ids, table_->var()); }

}  // namespace spectra
