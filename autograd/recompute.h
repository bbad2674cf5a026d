// Activation recomputation (DESIGN.md's autograd): y = fn(x) is computed without recording, so
// none of fn's intermediate activations are kept; the tape gets one entry whose backward runs
// fn(x) again, recording onto the tape, and seeds that output's gradient with y's. The backward
// loop pops those fresh entries next, so the gradients reach x and every parameter fn uses, as
// if fn had been recorded the first time. fn must compute the same values both times (spectra's
// kernels are deterministic) and must outlive the backward pass.
//
//   x = ag::recompute([&](const ag::Var& v) { return block.forward(v, b, t); }, x);
#pragma once
#include <functional>

#include "autograd/var.h"

namespace spectra::ag {

Var recompute(std::function<Var(const Var&)> fn, const Var& x);

}  // namespace spectra::ag
