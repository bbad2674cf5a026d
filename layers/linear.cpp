#include "layers/linear.h"

#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "kernels/ternary.h"

namespace spectra {

namespace {
bool parallel(const dist::Group* tp) { return tp && tp->size() > 1; }
}  // namespace

Linear::Linear(int64_t in, int64_t out, bool ternary, float ternary_eps, TpSplit split,
               const LayerOptions& opt, int64_t ternary_shards)
    : ternary_(ternary), eps_(ternary_eps), split_(split), tp_(opt.tp) {
  const int axis = split == TpSplit::column ? 0 : split == TpSplit::row ? 1 : -1;
  Split s = axis < 0 ? Split{} : Split{axis, opt.tp_size(), opt.tp_rank()};
  weight_ = &add_parameter("weight", {out, in}, Init::normal, /*decay=*/true, ternary, s);
  // The scale blocks follow the TP split (rows for column-parallel, columns for row-parallel).
  scales_ = {ternary_shards / s.parts, axis == 1 ? 1 : 0};
  weight_->scales = scales_;
}

ag::Var Linear::forward(const ag::Var& x) const {
  if (observer_) observer_(x.value());
  if (packed_ || int8_) {
    SPECTRA_CHECK(!ag::grad_enabled(), "Linear: packed weights run without gradients only");
    const Tensor& in = x.value();
    Shape out = in.shape();
    out.back() = packed_ ? packed_->rows : int8_->rows;
    Tensor y = Tensor::empty(out, DType::f32);
    if (packed_)
      kernels::packed_matmul(*packed_, in, y, activations_);
    else
      kernels::int8_matmul(*int8_, in, y);
    return ag::Var(y);
  }
  const bool tp = parallel(tp_);
  ag::Var in = tp && split_ == TpSplit::column ? ag::tp_copy(x, *tp_) : x;
  ag::Var y = !ternary_ ? ag::linear(in, weight_->var())
              : weight_->compute.defined()
                  ? ag::quantized_linear(in, weight_->var(), weight_->gamma)
                  : ag::ternary_linear(in, weight_->var(), eps_, scales_);
  return tp && split_ == TpSplit::row ? ag::tp_reduce(y, *tp_) : y;
}

std::vector<ag::Var> Linear::forward_packed(const std::vector<const Linear*>& linears,
                                            const ag::Var& x) {
  SPECTRA_CHECK(!ag::grad_enabled(), "Linear: packed weights run without gradients only");
  std::vector<const kernels::PackedTernary*> ws;
  std::vector<Tensor> ys;
  for (const Linear* l : linears) {
    SPECTRA_CHECK(l->packed_ && l->activations_ == linears[0]->activations_,
                  "Linear::forward_packed: projections packed alike");
    Shape out = x.shape();
    out.back() = l->packed_->rows;
    ws.push_back(l->packed_.get());
    ys.push_back(Tensor::empty(out, DType::f32));
  }
  std::vector<Tensor*> outs;
  for (Tensor& y : ys) outs.push_back(&y);
  kernels::packed_matmuls(ws, x.value(), outs, linears[0]->activations_);
  return {ys.begin(), ys.end()};
}

void Linear::pack(kernels::Activations mode) {
  SPECTRA_CHECK(!parallel(tp_), "Linear::pack: not under tensor parallelism");
  SPECTRA_CHECK(!weight_->master.is_cuda(), "Linear::pack: packed weights run on the CPU");
  if (ternary_ && !packed_)
    packed_ = std::make_shared<const kernels::PackedTernary>(
        kernels::pack_ternary(weight_->master, eps_, scales_.groups, scales_.axis));
  if (!ternary_) {
    SPECTRA_CHECK(!int8_ || mode == kernels::Activations::int8,
                  "Linear::pack: an int8 float projection cannot return to f32");
    if (mode != kernels::Activations::int8) return;
    if (!int8_)
      int8_ = std::make_shared<const kernels::Int8Matrix>(
          kernels::quantize_rows_int8(weight_->master.to(DType::f32)));
  }
  activations_ = mode;
  weight_->master = weight_->grad = weight_->compute = weight_->gamma = Tensor();
}

Tensor effective_weight(const Parameter& p, const Tensor& w, float ternary_eps,
                        int64_t ternary_shards) {
  Tensor full = w.to(Device::cpu()).to(DType::f32);
  if (!p.ternary) return full;
  Tensor out = Tensor::empty(full.shape(), DType::f32);
  Tensor gamma = Tensor::empty({ternary_shards}, DType::f32);
  kernels::ternary_quantize_groups(full, ternary_eps, ternary_shards, p.split.axis, out, gamma);
  return out;
}

RMSNorm::RMSNorm(int64_t dim, float eps, const LayerOptions& opt) : eps_(eps) {
  gain_ = &add_parameter("weight", {dim}, Init::ones, /*decay=*/false, false);
}

ag::Var RMSNorm::forward(const ag::Var& x) const { return ag::rmsnorm(x, gain_->var(), eps_); }

ag::AddNorm RMSNorm::forward_added(const ag::Var& x, const ag::Var& r) const {
  return ag::add_rmsnorm(x, r, gain_->var(), eps_);
}

Embedding::Embedding(int64_t rows, int64_t dim, const LayerOptions& opt)
    : tp_(opt.tp), offset_(rows / opt.tp_size() * opt.tp_rank()) {
  table_ = &add_parameter("weight", {rows, dim}, Init::normal, /*decay=*/true, false,
                          Split{0, opt.tp_size(), opt.tp_rank()});
}

ag::Var Embedding::forward(const Tensor& ids) const {
  ag::Var rows = ag::embedding(ids, table_->var(), offset_);
  return parallel(tp_) ? ag::tp_reduce(rows, *tp_) : rows;
}

}  // namespace spectra
