// AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW computes it, over many tensors in
// one call. The state (param, m, v) is f32; grads are f32 and multiplied by grad_scale first
// (gradient clipping and loss-scale removal fold into it). After the update, `compute` (if
// defined) receives the new parameter cast to its dtype: the weights the next step computes with.
#pragma once
#include <cmath>
#include <vector>

#include "core/hd.h"
#include "kernels/op.h"

namespace spectra::kernels {

struct AdamWHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
  int64_t step = 1;        // 1-based, after increment (bias corrections)
  float grad_scale = 1.f;  // grads are multiplied by this first
};

struct AdamWTensor {
  Tensor param, grad, m, v;
  Tensor compute;     // optional
  bool decay = true;  // false for norms (no weight decay)
};

// One element. bc1 = 1 - beta1^step, bc2 = 1 - beta2^step.
SPECTRA_HD void adamw_update(float& p, float g, float& m, float& v, float lr, float beta1,
                             float beta2, float eps, float wd, float bc1, float bc2) {
  p = p * (1.f - lr * wd);
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  float denom = sqrtf(v) / sqrtf(bc2) + eps;
  p = p - (lr / bc1) * (m / denom);
}

SPECTRA_OP(void, adamw_step, std::vector<AdamWTensor>& tensors, const AdamWHyper& hyper)

}  // namespace spectra::kernels
