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

Var ternary_linear(const Var& x, const Var& w, float eps, TernaryScales scales, Tensor* gamma_out) {
  Tensor weight = like(x.value(), w.shape());  // the trits, or γ·T with several scales
  Tensor gamma = Tensor::empty({scales.groups}, DType::f32, x.value().device());
  const bool one = scales.groups == 1;
  if (one)
    k::ternary_quantize(w.value(), eps, weight, gamma);
  else
    k::ternary_quantize_groups(w.value(), eps, scales.groups, scales.axis, weight, gamma);
  if (gamma_out) *gamma_out = gamma;
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
  const int64_t n = targets.numel(), vocab = z.size(-1);
  DType acc = acc_dtype(z.dtype());
  Tensor loss = Tensor::empty({n}, acc, z.device());
  Tensor lse = Tensor::empty({n}, acc, z.device());
  k::cross_entropy_forward(z, targets, 0, loss, lse);
  if (token_losses) *token_losses = loss;
  return mean_cross_entropy(logits, targets, targets.to_doubles(), {0, vocab}, loss.to_doubles(),
                            lse);
}

Var mean_cross_entropy(const Var& logits, const Tensor& targets, const std::vector<double>& t,
                       VocabShard shard, const std::vector<double>& losses, const Tensor& lse) {
  double sum = 0;
  int64_t valid = 0;
  for (size_t i = 0; i < t.size(); i++) {
    SPECTRA_CHECK(t[i] < double(shard.vocab),
                  "cross_entropy: target {} is outside the vocabulary of {}", t[i], shard.vocab);
    if (t[i] >= 0) {
      sum += losses[i];
      valid++;
    }
  }
  double mean = valid ? sum / double(valid) : 0.0;
  Var out(Tensor::full({1}, mean, DType::f64), needs_grad({&logits}));
  if (out.requires_grad()) {
    record([logits, targets, offset = shard.offset, lse, out, valid] {
      if (!out.has_grad() || valid == 0) return;
      double g = out.grad().item() / double(valid);  // d(mean)/d(loss_n)
      Tensor dloss = Tensor::full({targets.numel()}, g, lse.dtype(), logits.value().device());
      k::cross_entropy_backward(logits.value(), targets, offset, lse, dloss, logits.grad());
    });
  }
  return out;
}

}  // namespace spectra::ag
