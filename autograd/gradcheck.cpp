#include "autograd/gradcheck.h"

#include <fmt/format.h>

#include <cmath>

#include "autograd/ops.h"
#include "core/rng.h"

namespace spectra::ag {

GradCheck gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                    const std::vector<Tensor>& inputs, double h, double atol, double rtol) {
  std::vector<Var> vars;
  for (const Tensor& t : inputs) {
    SPECTRA_CHECK(t.dtype() == DType::f64 && t.device().is_cpu(),
                  "gradcheck needs f64 CPU inputs, got {}", t.str());
    vars.emplace_back(t, true);
  }
  backward(f(vars));
  auto eval = [&] {
    NoGradGuard ng;
    return f(vars).value().item();
  };
  GradCheck r;
  for (size_t k = 0; k < vars.size(); k++) {
    double* x = vars[k].value().data<double>();
    std::vector<double> analytic = vars[k].grad().to_doubles();
    for (int64_t i = 0; i < vars[k].value().numel(); i++) {
      double orig = x[i];
      x[i] = orig + h;
      double up = eval();
      x[i] = orig - h;
      double down = eval();
      x[i] = orig;
      double numeric = (up - down) / (2 * h), err = std::abs(analytic[i] - numeric);
      r.max_abs_error = std::max(r.max_abs_error, err);
      if (err > atol + rtol * std::abs(numeric) && r.ok) {
        r.ok = false;
        r.message = fmt::format("input {} element {}: analytic {:.10g}, numeric {:.10g}", k, i,
                                analytic[i], numeric);
      }
    }
  }
  return r;
}

Var weighted_sum(const Var& x, uint64_t seed) {
  // Σ x·r as a linear layer: [1, n] · [1, n]ᵀ.
  Tensor r = Tensor::empty({1, x.value().numel()}, x.value().dtype(), x.value().device());
  Tensor host = Tensor::empty({1, x.value().numel()}, DType::f64);
  for (int64_t i = 0; i < host.numel(); i++)
    host.data<double>()[i] = philox_normal(seed, uint64_t(i));
  r.copy_from(host.to(r.dtype()).to(r.device()));
  return linear(view(x, {1, x.value().numel()}), Var(r));
}

}  // namespace spectra::ag
