#include "autograd/parallel.h"

#include "kernels/elementwise.h"

namespace spectra::ag {

Var tp_copy(const Var& x, const dist::Group& tp) {
  if (tp.size() == 1) return x;
  Var out(x.value(), needs_grad({&x}));
  if (out.requires_grad()) {
    record([x, out, tp] {
      if (!out.has_grad()) return;
      Tensor g = out.grad();
      tp.all_reduce(g);
      kernels::axpy(1.f, g, x.grad());
    });
  }
  return out;
}

Var tp_reduce(const Var& x, const dist::Group& tp) {
  if (tp.size() == 1) return x;
  Tensor y = x.value().clone();
  tp.all_reduce(y);
  Var out(y, needs_grad({&x}));
  if (out.requires_grad()) {
    record([x, out] {
      if (!out.has_grad()) return;
      kernels::axpy(1.f, out.grad(), x.grad());
    });
  }
  return out;
}

}  // namespace spectra::ag
