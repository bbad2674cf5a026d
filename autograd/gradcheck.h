// A finite-difference gradient checker: compares the tape's gradients of a scalar function with
// central differences, element by element, in f64 on the CPU.
//
//   auto f = [](const std::vector<ag::Var>& in) { return ag::cross_entropy(ag::linear(in[0],
//   in[1]), t); }; GradCheck r = gradcheck(f, {x, w});   // x, w: f64 CPU tensors EXPECT_TRUE(r.ok)
//   << r.message;
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace spectra::ag {

struct GradCheck {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the worst element when !ok
};

// f maps the inputs to a one-element Var. Each input must be an f64 CPU tensor; every element of
// each is perturbed by ±h. Passes when |analytic − numeric| <= atol + rtol·|numeric| everywhere.
GradCheck gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                    const std::vector<Tensor>& inputs, double h = 1e-6, double atol = 1e-8,
                    double rtol = 1e-6);

// Reduces any Var to a scalar with fixed random weights, Σ x·r (r drawn from `seed`), so
// gradcheck can test ops with tensor outputs: every output element gets a distinct weight.
Var weighted_sum(const Var& x, uint64_t seed = 99);

}  // namespace spectra::ag
