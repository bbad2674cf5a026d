#include "train/optimizer.h"

#include <cmath>

#include "kernels/elementwise.h"

namespace spectra {

void LossScaler::update(bool overflow) {
  if (!enabled) return;
  if (overflow) {
    scale = std::max(scale / 2, 1.0);
    clean_steps = 0;
  } else if (++clean_steps >= growth_interval) {
    scale *= 2;
    clean_steps = 0;
  }
}

AdamW::AdamW(LM& model, const Recipe::Optimizer& cfg, bool fp16, const dist::Group* dp, int zero)
    : model_(model),
      cfg_(cfg),
      dp_(dp && dp->size() > 1 ? dp : nullptr),
      tp_(model.tp_group() && model.tp_group()->size() > 1 ? model.tp_group() : nullptr),
      zero_(dp_ ? zero : 0) {
  const Tensor& arena = model.master_arena();
  const int64_t n = arena.numel();
  hi_ = n;
  if (zero_) {
    const int d = dp_->size();
    SPECTRA_CHECK(n % d == 0,
                  "ZeRO-1: the parameter arena ({} elements) is not padded to a multiple "
                  "of the data-parallel size {}",
                  n, d);
    lo_ = dp_->rank() * (n / d);
    hi_ = lo_ + n / d;
    grad_shard_ = Tensor::zeros({hi_ - lo_}, DType::f32, arena.device());
  }
  m_ = Tensor::zeros({hi_ - lo_}, DType::f32, arena.device());
  v_ = Tensor::zeros({hi_ - lo_}, DType::f32, arena.device());
  const Tensor& grads = zero_ ? grad_shard_ : model.grad_arena();
  // One AdamW segment per parameter piece inside [lo, hi): the decay flag differs by parameter.
  int64_t off = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const int64_t pn = p->master.numel(), a = std::max(off, lo_), b = std::min(off + pn, hi_);
    if (a < b) {
      kernels::AdamWTensor t;
      t.param = arena.slice(a, b);
      t.grad = grads.slice(a - lo_, b - lo_);
      t.m = m_.slice(a - lo_, b - lo_);
      t.v = v_.slice(a - lo_, b - lo_);
      t.decay = p->decay;
      // Whole parameters write their compute copy here; ZeRO shards refresh it after the gather.
      if (!zero_ && p->compute.defined()) t.compute = p->compute.view({pn});
      segments_.push_back(t);
      segment_split_.push_back(p->split.parts > 1);
    }
    off += pn;
  }
  scaler_.enabled = fp16;
  if (fp16) scaler_.scale = 65536.0;
}

Tensor AdamW::full_moment(int which) const {
  const Tensor& local = which == 0 ? m_ : v_;
  if (!zero_) return local;
  Tensor full;
  if (dp_->rank() == 0) full = Tensor::empty({model_.master_arena().numel()}, DType::f32);
  dp_->gather(local, full, 0);
  return full;
}

void AdamW::restore(const Tensor& m_full, const Tensor& v_full, int64_t steps,
                    const LossScaler& s) {
  SPECTRA_CHECK(m_full.numel() == model_.master_arena().numel() && v_full.numel() == m_full.numel(),
                "AdamW::restore: moments {} / {} for an arena of {}", m_full.str(), v_full.str(),
                model_.master_arena().numel());
  m_.copy_from(m_full.slice(lo_, hi_));
  v_.copy_from(v_full.slice(lo_, hi_));
  step_ = steps;
  scaler_ = s;
}

void AdamW::reduce_gradients() {
  if (!dp_) return;
  Tensor grads = model_.grad_arena();
  if (zero_) return dp_->reduce_scatter(grads, grad_shard_);
  const int64_t bucket = int64_t(1) << 24;  // 64 MiB of f32 per all-reduce
  for (int64_t s = 0; s < grads.numel(); s += bucket) {
    Tensor b = grads.slice(s, std::min(grads.numel(), s + bucket));
    dp_->all_reduce(b);
  }
}

// Σ grad² over the whole model under tensor parallelism: a split parameter's squares differ
// across the TP group and are summed over it; a replicated one (a norm gain) has the same
// gradient on every TP rank and counts once. Under ZeRO-1 the DP shards are summed first.
double AdamW::tp_sum_squares(bool& nonfinite) const {
  std::vector<Tensor> split, replicated;
  for (size_t i = 0; i < segments_.size(); i++)
    (segment_split_[i] ? split : replicated).push_back(segments_[i].grad);
  bool bad_split = false, bad_replicated = false;
  Tensor t = Tensor::empty({2}, DType::f64);
  t.data<double>()[0] = split.empty() ? 0.0 : kernels::sum_squares(split, &bad_split);
  t.data<double>()[1] =
      replicated.empty() ? 0.0 : kernels::sum_squares(replicated, &bad_replicated);
  nonfinite = bad_split || bad_replicated;
  if (zero_) {
    dp_->all_reduce(t);
    nonfinite = dp_->any(nonfinite);
  }
  Tensor shards = t.slice(0, 1);
  tp_->all_reduce(shards);
  nonfinite = tp_->any(nonfinite);
  return t.data<double>()[0] + t.data<double>()[1];
}

StepStats AdamW::step(double lr, double weight_decay) {
  StepStats s;
  reduce_gradients();
  const int replicas = dp_ ? dp_->size() : 1;
  const double loss_scale = scaler_.scale;  // the scale this step's gradients carry
  bool nonfinite = false;
  double ss = tp_ ? tp_sum_squares(nonfinite)
                  : kernels::sum_squares({zero_ ? grad_shard_ : model_.grad_arena()}, &nonfinite);
  if (zero_ && !tp_) {  // each rank holds a different shard: sum the squares, agree on overflow
    Tensor t = Tensor::full({1}, ss, DType::f64);
    dp_->all_reduce(t);
    ss = t.item();
    nonfinite = dp_->any(nonfinite);
  }
  const double norm = std::sqrt(ss) / (loss_scale * replicas);
  s.grad_norm = norm;
  scaler_.update(nonfinite);
  if (nonfinite) {
    s.skipped = true;
    model_.zero_grad();
    return s;
  }
  // Clipping as torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when above.
  double clip = 1.0;
  if (cfg_.grad_clip > 0 && norm > cfg_.grad_clip) clip = cfg_.grad_clip / (norm + 1e-6);
  kernels::AdamWHyper h;
  h.lr = float(lr);
  h.beta1 = float(cfg_.beta1);
  h.beta2 = float(cfg_.beta2);
  h.eps = float(cfg_.eps);
  h.weight_decay = float(weight_decay);
  h.step = ++step_;
  h.grad_scale = float(clip / (loss_scale * replicas));
  kernels::adamw_step(segments_, h);
  if (zero_) {
    Tensor arena = model_.master_arena();
    dp_->all_gather(arena.slice(lo_, hi_), arena);
    model_.refresh_compute();
  }
  model_.zero_grad();
  return s;
}

}  // namespace spectra
