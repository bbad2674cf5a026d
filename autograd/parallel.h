// The communication points of Megatron tensor parallelism as differentiable ops (Shoeybi et al.
// 2019, the f and g operators): a column-parallel layer's input passes through tp_copy (forward:
// identity; backward: all-reduce the gradient over the TP group) and a row-parallel layer's
// output through tp_reduce (forward: all-reduce; backward: identity).
#pragma once
#include "autograd/var.h"
#include "dist/group.h"

namespace spectra::ag {

Var tp_copy(const Var& x, const dist::Group& tp);
Var tp_reduce(const Var& x, const dist::Group& tp);

}  // namespace spectra::ag
