// SwiGLU gating, elementwise through the shared swiglu_value / swiglu_grad.
#include "kernels/swiglu.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  dispatch_float("swiglu_forward", gate.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *g = gate.data<T>(), *u = up.data<T>();
    T* o = out.data<T>();
    const int64_t n = gate.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) o[i] = swiglu_value(g[i], u[i]);
  });
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  dispatch_float("swiglu_backward", gate.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *d = dout.data<T>(), *g = gate.data<T>(), *u = up.data<T>();
    T *dg = dgate.data<T>(), *du = dup.data<T>();
    const int64_t n = gate.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      T a, b;
      swiglu_grad(g[i], u[i], d[i], a, b);
      dg[i] += a;
      du[i] += b;
    }
  });
}

}  // namespace spectra::kernels::cpu
