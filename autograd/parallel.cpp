#include "autograd/parallel.h"

#include <cmath>

#include "kernels/cross_entropy.h"
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

Var vocab_parallel_cross_entropy(const Var& logits, const Tensor& targets, int64_t vocab_offset,
                                 const dist::Group& tp, Tensor* token_losses) {
  if (tp.size() == 1) return cross_entropy(logits, targets, token_losses);
  const Tensor& z = logits.value();
  const int64_t n = targets.numel(), vocab = z.size(-1) * tp.size();
  const DType acc = z.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor loss = Tensor::empty({n}, acc, z.device()), lse = Tensor::empty({n}, acc, z.device());
  kernels::cross_entropy_forward(z, targets, vocab_offset, loss, lse);
  const std::vector<double> shard_loss = loss.to_doubles(), shard_lse = lse.to_doubles(),
                            t = targets.to_doubles();
  // lse = M + log Σ_ranks exp(lse_r − M) with M the largest; the target's logit is
  // lse_r − loss_r on the rank holding it, 0 elsewhere.
  Tensor top = Tensor::from(shard_lse, {n});
  tp.all_reduce(top, dist::ReduceOp::max);
  Tensor sums = Tensor::empty({2 * n}, DType::f64);
  double* s = sums.data<double>();
  const double* m = top.data<double>();
  for (int64_t i = 0; i < n; i++) {
    SPECTRA_CHECK(t[i] < double(vocab), "cross_entropy: target {} is outside the vocabulary of {}",
                  t[i], vocab);
    const bool mine = t[i] >= double(vocab_offset) && t[i] < double(vocab_offset + z.size(-1));
    s[i] = std::exp(shard_lse[i] - m[i]);
    s[n + i] = mine ? shard_lse[i] - shard_loss[i] : 0.0;
  }
  tp.all_reduce(sums);
  std::vector<double> whole_lse(static_cast<size_t>(n)), losses(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) {
    whole_lse[size_t(i)] = m[i] + std::log(s[i]);
    losses[size_t(i)] = t[i] < 0 ? 0.0 : whole_lse[size_t(i)] - s[n + i];
  }
  const Tensor loss_tensor = Tensor::from(losses, {n}).to(acc).to(z.device());
  if (token_losses) *token_losses = loss_tensor;
  return mean_cross_entropy(logits, targets, {vocab_offset, vocab}, loss_tensor,
                            Tensor::from(whole_lse, {n}).to(acc).to(z.device()));
}

}  // namespace spectra::ag
