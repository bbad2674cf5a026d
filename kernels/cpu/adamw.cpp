// AdamW over every tensor, element by element through the shared adamw_update.
#include <cmath>

#include "kernels/adamw.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void adamw_step(std::vector<AdamWTensor>& tensors, const AdamWHyper& h) {
  // The same f32 expressions as the CUDA path, so both backends update identically.
  const float bc1 = 1.f - std::pow(h.beta1, float(h.step));
  const float bc2 = 1.f - std::pow(h.beta2, float(h.step));
  for (AdamWTensor& t : tensors) {
    float *p = t.param.data<float>(), *m = t.m.data<float>(), *v = t.v.data<float>();
    const float* g = t.grad.data<float>();
    const float wd = t.decay ? h.weight_decay : 0.f;
    const int64_t n = t.param.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
      adamw_update(p[i], g[i] * h.grad_scale, m[i], v[i], h.lr, h.beta1, h.beta2, h.eps, wd, bc1,
                   bc2);
    if (!t.compute.defined()) continue;
    dispatch_storage("adamw_step", t.compute.dtype(), [&](auto z) {
      using C = decltype(z);
      C* c = t.compute.data<C>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) c[i] = narrow<C>(p[i]);
    });
  }
}

}  // namespace spectra::kernels::cpu
