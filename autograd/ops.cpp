#include "autograd/ops.h"

#include <cmath>

#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

namespace spectra::ag {

namespace k = spectra::kernels;

namespace {
DType acc_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }
Tensor like(const Tensor& t, Shape shape) {
  return Tensor::empty(std::move(shape), t.dtype(), t.device());
}
Tensor like(const Tensor& t) { return like(t, t.shape()); }
// Output shape of a [.., in] -> [.., out] projection.
Shape with_last(Shape s, int64_t last) {
  s.back() = last;
  return s;
}
}  // namespace

Var linear(const Var& x, const Var& w) {
  Tensor y = like(x.value(), with_last(x.shape(), w.shape()[0]));
  k::matmul(x.value(), false, w.value(), true, y, 1.f, 0.f, nullptr);
  Var out(y, needs_grad({&x, &w}));
  if (out.requires_grad()) {
    record([x, w, out] {
      if (!out.has_grad()) return;
      const Tensor& dy = out.grad();
      if (x.requires_grad()) k::matmul(dy, false, w.value(), false, x.grad(), 1.f, 1.f, nullptr);
      if (w.requires_grad()) k::matmul(dy, true, x.value(), false, w.grad(), 1.f, 1.f, nullptr);
    });
  }
  return out;
}

namespace {
// y = x · (γ·T)ᵀ from the quantized `weight` (the trits with one scale, applied in the matmul's
// epilogue; γ·T with several); w (the latent weight) gets dW straight through.
Var ternary_matmul(const Var& x, const Var& w, const Tensor& weight, const Tensor& gamma) {
  const bool one = gamma.numel() == 1;
  const Tensor* alpha = one ? &gamma : nullptr;
  Tensor y = like(x.value(), with_last(x.shape(), w.shape()[0]));
  k::matmul(x.value(), false, weight, true, y, 1.f, 0.f, alpha);
  Var out(y, needs_grad({&x, &w}));
  if (out.requires_grad()) {
    record([x, w, out, weight, gamma, one] {
      if (!out.has_grad()) return;
      const Tensor& dy = out.grad();
      if (x.requires_grad())
        k::matmul(dy, false, weight, false, x.grad(), 1.f, 1.f, one ? &gamma : nullptr);
      // Straight-through: the latent weight gets the gradient of the effective weight γ·T.
      if (w.requires_grad()) k::matmul(dy, true, x.value(), false, w.grad(), 1.f, 1.f, nullptr);
    });
  }
  return out;
}
}  // namespace

Var ternary_linear(const Var& x, const Var& w, float eps, TernaryScales scales, Tensor* gamma_out) {
  Tensor weight = like(x.value(), w.shape());  // the trits, or γ·T with several scales
  Tensor gamma = Tensor::empty({scales.groups}, DType::f32, x.value().device());
  if (scales.groups == 1)
    k::ternary_quantize(w.value(), eps, weight, gamma);
  else
    k::ternary_quantize_groups(w.value(), eps, scales.groups, scales.axis, weight, gamma);
  if (gamma_out) *gamma_out = gamma;
  return ternary_matmul(x, w, weight, gamma);
}

Var quantized_linear(const Var& x, const Var& w, const Tensor& gamma) {
  return ternary_matmul(x, w, w.value(), gamma);
}

Var rmsnorm(const Var& x, const Var& g, float eps) {
  Tensor y = like(x.value());
  int64_t rows = x.value().numel() / x.shape().back();
  Tensor rstd = Tensor::empty({rows}, acc_dtype(x.value().dtype()), x.value().device());
  k::rmsnorm_forward(x.value(), g.value(), eps, y, rstd);
  Var out(y, needs_grad({&x, &g}));
  if (out.requires_grad()) {
    record([x, g, out, rstd] {
      if (!out.has_grad()) return;
      // The kernel computes both gradients; a scratch buffer takes the one nobody wants.
      Tensor dx = x.requires_grad()
                      ? x.grad()
                      : Tensor::zeros(x.shape(), x.value().dtype(), x.value().device());
      Tensor dg = g.requires_grad()
                      ? g.grad()
                      : Tensor::zeros(g.shape(), acc_dtype(g.value().dtype()), g.value().device());
      k::rmsnorm_backward(out.grad(), x.value(), g.value(), rstd, dx, dg);
    });
  }
  return out;
}

AddNorm add_rmsnorm(const Var& x, const Var& r, const Var& g, float eps) {
  Tensor h = like(x.value()), y = like(x.value());
  const int64_t rows = x.value().numel() / x.shape().back();
  Tensor rstd = Tensor::empty({rows}, acc_dtype(x.value().dtype()), x.value().device());
  k::add_rmsnorm_forward(x.value(), r.value(), g.value(), eps, h, y, rstd);
  const bool grad = needs_grad({&x, &r, &g});
  AddNorm out{Var(h, grad), Var(y, grad)};
  if (grad) {
    record([x, r, g, sum = out.sum, normed = out.normed, rstd] {
      if (!sum.has_grad() && !normed.has_grad()) return;
      // The kernel writes every gradient; scratch buffers take those nobody wants.
      auto grad_or_scratch = [](const Var& v, DType dt) {
        return v.requires_grad() ? v.grad() : Tensor::zeros(v.shape(), dt, v.value().device());
      };
      const DType act = x.value().dtype();
      Tensor dx = grad_or_scratch(x, act), dr = grad_or_scratch(r, act);
      Tensor dg = grad_or_scratch(g, acc_dtype(g.value().dtype()));
      k::add_rmsnorm_backward(normed.grad(), sum.grad(), sum.value(), g.value(), rstd, dx, dr, dg);
    });
  }
  return out;
}

Var swiglu(const Var& gate, const Var& up) {
  Tensor y = like(gate.value());
  k::swiglu_forward(gate.value(), up.value(), y);
  Var out(y, needs_grad({&gate, &up}));
  if (out.requires_grad()) {
    record([gate, up, out] {
      if (!out.has_grad()) return;
      k::swiglu_backward(out.grad(), gate.value(), up.value(), gate.grad(), up.grad());
    });
  }
  return out;
}

Var rope(const Var& x, int64_t pos0, float theta) {
  Tensor y = like(x.value());
  k::rope_forward(x.value(), pos0, theta, y);
  Var out(y, needs_grad({&x}));
  if (out.requires_grad()) {
    record([x, out, pos0, theta] {
      if (!out.has_grad()) return;
      k::rope_backward(out.grad(), pos0, theta, x.grad());
    });
  }
  return out;
}

Var attention(const Var& q, const Var& kk, const Var& v, k::AttentionImpl impl) {
  const Shape& s = q.shape();  // [B, T, H, Dh]
  SPECTRA_CHECK(s.size() == 4, "attention: q must be [B, T, H, Dh], got {}", shape_str(s));
  float scale = float(1.0 / std::sqrt(double(s[3])));
  Tensor o = like(q.value());
  Tensor lse = Tensor::empty({s[0], s[2], s[1]}, acc_dtype(q.value().dtype()), q.value().device());
  k::attention_forward(q.value(), kk.value(), v.value(), scale, o, lse, impl);
  Var out(o, needs_grad({&q, &kk, &v}));
  if (out.requires_grad()) {
    record([q, kk, v, out, lse, scale, impl] {
      if (!out.has_grad()) return;
      k::attention_backward(out.grad(), q.value(), kk.value(), v.value(), out.value(), lse, scale,
                            q.grad(), kk.grad(), v.grad(), impl);
    });
  }
  return out;
}

Var embedding(const Tensor& ids, const Var& table, int64_t vocab_offset) {
  Tensor y = like(table.value(), {ids.numel(), table.shape()[1]});
  k::embedding_forward(ids, table.value(), vocab_offset, y);
  Var out(y, needs_grad({&table}));
  if (out.requires_grad()) {
    record([ids, table, out, vocab_offset] {
      if (!out.has_grad()) return;
      k::embedding_backward(ids, out.grad(), vocab_offset, table.grad());
    });
  }
  return out;
}

Var add(const Var& a, const Var& b) {
  Tensor y = like(a.value());
  k::add(a.value(), b.value(), y);
  Var out(y, needs_grad({&a, &b}));
  if (out.requires_grad()) {
    record([a, b, out] {
      if (!out.has_grad()) return;
      if (a.requires_grad()) k::axpy(1.f, out.grad(), a.grad());
      if (b.requires_grad()) k::axpy(1.f, out.grad(), b.grad());
    });
  }
  return out;
}

Var view(const Var& x, Shape shape) {
  Tensor y = x.value().view(shape);
  if (!x.requires_grad()) return Var(y, false);
  return Var::with_grad(y, x.grad().view(std::move(shape)));
}

Var cross_entropy(const Var& logits, const Tensor& targets, Tensor* token_losses) {
  const Tensor& z = logits.value();
  const int64_t n = targets.numel();
  DType acc = acc_dtype(z.dtype());
  Tensor loss = Tensor::empty({n}, acc, z.device());
  Tensor lse = Tensor::empty({n}, acc, z.device());
  k::cross_entropy_forward(z, targets, 0, loss, lse);
  if (token_losses) *token_losses = loss;
  return mean_cross_entropy(logits, targets, {0, z.size(-1)}, loss, lse);
}

namespace {
void check_host_targets(const Tensor& targets, int64_t vocab) {
  if (!targets.device().is_cpu()) return;
  const int32_t* t = targets.data<int32_t>();
  for (int64_t i = 0; i < targets.numel(); i++)
    SPECTRA_CHECK(t[i] < vocab, "cross_entropy: target {} is outside the vocabulary of {}", t[i],
                  vocab);
}

// The mean of `losses` as a value that requires grad when `grad` says so (an input does); its
// backward hands each row dmean / count to `row_backward(dloss)`.
Var loss_mean(bool grad, const Tensor& targets, const Tensor& losses,
              std::function<void(const Tensor& dloss)> row_backward) {
  Tensor mean = Tensor::empty({1}, losses.dtype(), losses.device());
  Tensor count = Tensor::empty({1}, losses.dtype(), losses.device());
  k::cross_entropy_mean(losses, targets, mean, count);
  Var out(mean, grad);
  if (grad) {
    record([out, count, n = losses.numel(), row_backward = std::move(row_backward)] {
      if (!out.has_grad()) return;
      Tensor dloss = Tensor::empty({n}, count.dtype(), count.device());
      k::cross_entropy_mean_backward(out.grad(), count, dloss);
      row_backward(dloss);
    });
  }
  return out;
}
}  // namespace

Var mean_cross_entropy(const Var& logits, const Tensor& targets, VocabShard shard,
                       const Tensor& losses, const Tensor& lse) {
  check_host_targets(targets, shard.vocab);
  return loss_mean(needs_grad({&logits}), targets, losses,
                   [logits, targets, offset = shard.offset, lse](const Tensor& dloss) {
                     k::cross_entropy_backward(logits.value(), targets, offset, lse, dloss,
                                               logits.grad());
                   });
}

int64_t head_chunk_rows(int64_t vocab) {
  const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 26) / std::max<int64_t>(vocab, 1));
  return rows >= 64 ? rows / 64 * 64 : rows;
}

Var linear_cross_entropy(const Var& x, const Var& w, const Tensor& targets, int64_t chunk_rows,
                         Tensor* token_losses) {
  const Tensor& xv = x.value();
  const int64_t n = xv.size(0), vocab = w.shape()[0];
  SPECTRA_CHECK(xv.dim() == 2 && targets.numel() == n && chunk_rows > 0,
                "linear_cross_entropy: x {} with {} targets in chunks of {} rows", xv.str(),
                targets.numel(), chunk_rows);
  check_host_targets(targets, vocab);
  const DType acc = acc_dtype(xv.dtype());
  Tensor loss = Tensor::empty({n}, acc, xv.device()), lse = Tensor::empty({n}, acc, xv.device());
  // Calls fn(rows [r0, r1), that chunk's logits) for every chunk, in one reused buffer.
  auto each_chunk = [xv, w, n, vocab, chunk_rows](auto&& fn) {
    Tensor buffer = like(xv, {std::min(n, chunk_rows), vocab});
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows) {
      const int64_t r1 = std::min(n, r0 + chunk_rows);
      Tensor z = buffer.slice(0, r1 - r0);
      k::matmul(xv.slice(r0, r1), false, w.value(), true, z, 1.f, 0.f, nullptr);
      fn(r0, r1, z);
    }
  };
  each_chunk([&](int64_t r0, int64_t r1, Tensor& z) {
    Tensor loss_c = loss.slice(r0, r1), lse_c = lse.slice(r0, r1);
    k::cross_entropy_forward(z, targets.slice(r0, r1), 0, loss_c, lse_c);
  });
  if (token_losses) *token_losses = loss;
  return loss_mean(needs_grad({&x, &w}), targets, loss, [=](const Tensor& dloss) {
    Tensor dz_buffer = like(xv, {std::min(n, chunk_rows), vocab});
    each_chunk([&](int64_t r0, int64_t r1, Tensor& z) {
      Tensor dz = dz_buffer.slice(0, r1 - r0);
      dz.zero_();
      k::cross_entropy_backward(z, targets.slice(r0, r1), 0, lse.slice(r0, r1), dloss.slice(r0, r1),
                                dz);
      if (x.requires_grad()) {
        Tensor dx = x.grad().slice(r0, r1);
        k::matmul(dz, false, w.value(), false, dx, 1.f, 1.f, nullptr);
      }
      if (w.requires_grad())
        k::matmul(dz, true, xv.slice(r0, r1), false, w.grad(), 1.f, 1.f, nullptr);
    });
  });
}

}  // namespace spectra::ag
