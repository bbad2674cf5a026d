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

AdamW::AdamW(LM& model, const Recipe::Optimizer& cfg, bool fp16) : model_(model), cfg_(cfg) {
  for (auto& [name, p] : model.named_parameters()) {
    kernels::AdamWTensor t;
    t.param = p->master;
    t.grad = p->grad;
    t.m = Tensor::zeros(p->master.shape(), DType::f32, p->master.device());
    t.v = Tensor::zeros(p->master.shape(), DType::f32, p->master.device());
    t.compute = p->compute;
    t.decay = p->decay;
    tensors_.push_back(t);
    grads_.push_back(p->grad);
  }
  scaler_.enabled = fp16;
  if (fp16) scaler_.scale = 65536.0;
}

StepStats AdamW::step(double lr, double weight_decay) {
  StepStats s;
  bool nonfinite = false;
  const double loss_scale = scaler_.scale;  // the scale this step's gradients carry
  double norm = std::sqrt(kernels::sum_squares(grads_, &nonfinite)) / loss_scale;
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
  h.grad_scale = float(clip / loss_scale);
  kernels::adamw_step(tensors_, h);
  model_.zero_grad();
  return s;
}

}  // namespace spectra
