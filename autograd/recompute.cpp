#include "autograd/recompute.h"

#include "kernels/elementwise.h"

namespace spectra::ag {

Var recompute(std::function<Var(const Var&)> fn, const Var& x) {
  if (!grad_enabled()) return fn(x);
  Tensor value;
  {
    NoGradGuard no_grad;
    value = fn(x).value();
  }
  Var y(value, true);
  record([fn = std::move(fn), x, y] {
    SPECTRA_CHECK(grad_enabled(), "recompute: backward() ran with recording off");
    Var again = fn(x);  // records its entries; backward() runs them next, newest first
    if (again.requires_grad()) kernels::axpy(1.f, y.grad(), again.grad());
  });
  return y;
}

}  // namespace spectra::ag
