// AdamW over every tensor, element by element through the shared adamw_update.
#include <cmath>

#include "core/half.h"
#include "kernels/adamw.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void adamw_step(std::vector<AdamWTensor>& tensors, const AdamWHyper& h) {
  const float bc1 = 1.f - std::pow(h.beta1, float(h.step));
  const float bc2 = 1.f - std::pow(h.beta2, float(h.step));
  for (AdamWTensor& t : tensors) {
    for (const Tensor* x : {&t.param, &t.grad, &t.m, &t.v}) check_dtype("adamw_step", *x, "state", DType::f32);
    check_same("adamw_step", t.param, "param", t.grad, "grad");
    check_same("adamw_step", t.param, "param", t.m, "m");
    check_same("adamw_step", t.param, "param", t.v, "v");
    float *p = t.param.data<float>(), *m = t.m.data<float>(), *v = t.v.data<float>();
    const float* g = t.grad.data<float>();
    const float wd = t.decay ? h.weight_decay : 0.f;
    const int64_t n = t.param.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
      adamw_update(p[i], g[i] * h.grad_scale, m[i], v[i], h.lr, h.beta1, h.beta2, h.eps, wd, bc1, bc2);
    if (t.compute.defined()) {
      if (t.compute.shape() != t.param.shape())
        throw Error(fmt::format("adamw_step: compute {} and param {} disagree", t.compute.str(), t.param.str()));
      const size_t es = dtype_size(t.compute.dtype());
      char* c = static_cast<char*>(t.compute.raw());
      for (int64_t i = 0; i < n; i++) store_from_double(c + size_t(i) * es, t.compute.dtype(), p[i]);
    }
  }
}

}  // namespace spectra::kernels::cpu
