#include "train/adamw.h"

#include <cmath>

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

AdamW::AdamW(const std::vector<AdamWPiece>& pieces, int64_t state_elements, Device device,
             const Recipe::Optimizer& cfg, bool fp16)
    : cfg_(cfg),
      m_(Tensor::zeros({state_elements}, DType::f32, device)),
      v_(Tensor::zeros({state_elements}, DType::f32, device)) {
  for (const AdamWPiece& p : pieces) {
    const int64_t n = p.param.numel();
    SPECTRA_CHECK(p.grad.numel() == n && p.state + n <= state_elements,
                  "AdamW piece: param {}, grad {}, state at {} of {}", p.param.str(), p.grad.str(),
                  p.state, state_elements);
    kernels::AdamWTensor t;
    t.param = p.param;
    t.grad = p.grad;
    t.m = m_.slice(p.state, p.state + n);
    t.v = v_.slice(p.state, p.state + n);
    t.decay = p.decay;
    t.compute = p.compute;
    segments_.push_back(t);
  }
  scaler_.enabled = fp16;
  if (fp16) scaler_.scale = 65536.0;
}

void AdamW::restore(const Tensor& m, const Tensor& v, int64_t steps, const LossScaler& s) {
  SPECTRA_CHECK(m.numel() == m_.numel() && v.numel() == v_.numel(),
                "AdamW::restore: moments {} / {} for a state of {}", m.str(), v.str(), m_.numel());
  m_.copy_from(m);
  v_.copy_from(v);
  step_ = steps;
  scaler_ = s;
}

StepStats AdamW::step(double lr, double weight_decay, double sum_squares, bool nonfinite,
                      int replicas) {
  StepStats s;
  const double loss_scale = scaler_.scale;  // the scale this step's gradients carry
  const double norm = std::sqrt(sum_squares) / (loss_scale * replicas);
  s.grad_norm = norm;
  scaler_.update(nonfinite);
  if (nonfinite) {
    s.skipped = true;
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
  return s;
}

}  // namespace spectra
