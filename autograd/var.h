// Var and the tape: a minimal reverse-mode autograd.
//
// A Var is a handle to a value tensor plus, if it requires grad, a gradient tensor of the same
// shape (allocated zeroed on first use). Each differentiable op (autograd/ops.h) runs its forward
// kernel and, when recording is on and an input requires grad, appends one entry to the tape:
// a closure holding what it saved. backward(loss) walks the tape once in reverse and clears it.
//
//   Var w(Tensor::full({3, 4}, 0.1), /*requires_grad=*/true);
//   Var y = ag::linear(x, w);            // records an entry
//   Var loss = ag::cross_entropy(y, t);  // a one-element value
//   ag::backward(loss);                  // w.grad() now holds dL/dw
//
// Gradients accumulate: parameters keep theirs across several backward() calls (gradient
// accumulation over micro-batches) until the optimizer zeroes them.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace spectra::ag {

struct Node {
  Tensor value;
  Tensor grad;  // undefined until first needed
  bool requires_grad = false;
  DType grad_dtype = DType::f32;
};

class Var {
 public:
  Var() = default;
  // grad_dtype defaults to the value's dtype; parameters whose value is a 16-bit compute copy
  // keep f32 gradients.
  explicit Var(Tensor value, bool requires_grad = false);
  Var(Tensor value, bool requires_grad, DType grad_dtype);
  // A Var whose gradient lives in an existing tensor (a parameter's f32 gradient buffer).
  static Var with_grad(Tensor value, Tensor grad);

  bool defined() const { return node_ != nullptr; }
  const Tensor& value() const { return node_->value; }
  bool requires_grad() const { return node_ && node_->requires_grad; }
  // The gradient, allocated (zeroed) on first call.
  Tensor& grad() const;
  bool has_grad() const { return node_ && node_->grad.defined(); }
  const Shape& shape() const { return node_->value.shape(); }

 private:
  std::shared_ptr<Node> node_;
};

// Recording control. The tape is per thread.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Appends a backward closure (ops call this; see autograd/ops.cpp).
void record(std::function<void()> backward_fn);
// True if recording is on and any input requires grad: the op's output then requires grad.
bool needs_grad(std::initializer_list<const Var*> inputs);
size_t tape_size();

// Seeds d(loss) = seed (one-element loss) and runs the tape in reverse, then clears it.
void backward(const Var& loss, double seed = 1.0);
// Called between the backward closures of this thread's tape (null: none): the data-parallel
// engine lets its non-blocking collectives progress there while the backward pass computes.
void set_backward_progress(std::function<void()> progress);
// Drops recorded entries without running them (e.g. after an evaluation forward).
void clear_tape();

}  // namespace spectra::ag
