#include "autograd/var.h"

namespace spectra::ag {

namespace {
struct Tape {
  std::vector<std::function<void()>> entries;
  std::function<void()> progress;
  bool enabled = true;
};
Tape& tape() {
  thread_local Tape t;
  return t;
}
}  // namespace

Var::Var(Tensor value, bool requires_grad) : Var(value, requires_grad, value.dtype()) {}

Var::Var(Tensor value, bool requires_grad, DType grad_dtype) : node_(std::make_shared<Node>()) {
  node_->value = std::move(value);
  node_->requires_grad = requires_grad;
  node_->grad_dtype = grad_dtype;
}

Var Var::with_grad(Tensor value, Tensor grad) {
  SPECTRA_CHECK(value.shape() == grad.shape(), "with_grad: value {} and grad {}", value.str(),
                grad.str());
  Var v(std::move(value), true, grad.dtype());
  v.node_->grad = std::move(grad);
  return v;
}

Tensor& Var::grad() const {
  if (!node_->grad.defined())
    node_->grad = Tensor::zeros(node_->value.shape(), node_->grad_dtype, node_->value.device());
  return node_->grad;
}

bool grad_enabled() { return tape().enabled; }

NoGradGuard::NoGradGuard() : prev_(tape().enabled) { tape().enabled = false; }
NoGradGuard::~NoGradGuard() { tape().enabled = prev_; }

void record(std::function<void()> fn) { tape().entries.push_back(std::move(fn)); }

bool needs_grad(std::initializer_list<const Var*> inputs) {
  if (!tape().enabled) return false;
  for (const Var* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

size_t tape_size() { return tape().entries.size(); }

void backward(const Var& loss, double seed) {
  SPECTRA_CHECK(loss.value().numel() == 1, "backward: loss must have one element, got {}",
                loss.value().str());
  SPECTRA_CHECK(loss.requires_grad(),
                "backward: the loss does not depend on anything that "
                "requires grad");
  loss.grad().fill_(seed);
  auto& entries = tape().entries;
  // Pop as we go so each closure (and the activations it holds) is freed right after it runs.
  while (!entries.empty()) {
    std::function<void()> fn = std::move(entries.back());
    entries.pop_back();
    fn();
    if (tape().progress) tape().progress();
  }
}

void set_backward_progress(std::function<void()> progress) {
  tape().progress = std::move(progress);
}

void clear_tape() { tape().entries.clear(); }

}  // namespace spectra::ag
