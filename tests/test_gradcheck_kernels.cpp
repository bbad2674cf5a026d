// Every backward kernel against central finite differences in f64 of the scalar
// L = Σ forward(inputs) · R (R a fixed random tensor, so dL/doutput = R), perturbing every input
// element (h = 1e-6, relative tolerance 1e-6). The TriLM layer: dX through the quantized weight,
// and the straight-through weight gradient equals the float layer's gradient at the effective
// weight γ·T.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>

#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

using namespace spectra;
namespace cpu = spectra::kernels::cpu;

namespace {

uint64_t g_seed = 100;

// f64 N(0, scale²) values from a fresh stream (Box-Muller in double).
Tensor randn(Shape s, double scale = 1.0) {
  Tensor t = Tensor::empty(std::move(s), DType::f64);
  Rng rng{g_seed++, 0};
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<double>()[i] = scale * std::sqrt(-2 * std::log(rng.uniform())) *
                          std::cos(6.283185307179586 * rng.uniform());
  return t;
}
Tensor empty(Shape s) { return Tensor::empty(std::move(s), DType::f64); }
Tensor zeros(Shape s) { return Tensor::zeros(std::move(s), DType::f64); }
Tensor ids(int64_t n, int64_t hi) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  Rng rng{g_seed++, 0};
  for (auto& x : v) x = int32_t(rng.below(uint64_t(hi)));
  return Tensor::from(v, {n});
}

// Σ a·b over all elements.
double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); i++) s += a.data<double>()[i] * b.data<double>()[i];
  return s;
}

// Compares `grad` with central differences of loss() in every element of x (which loss() reads).
void expect_fd(const std::string& what, Tensor x, const Tensor& grad,
               const std::function<double()>& loss) {
  ASSERT_EQ(x.shape(), grad.shape()) << what;
  const double h = 1e-6;
  double* p = x.data<double>();
  const double* g = grad.data<double>();
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < x.numel(); i++) {
    const double orig = p[i];
    p[i] = orig + h;
    const double up = loss();
    p[i] = orig - h;
    const double down = loss();
    p[i] = orig;
    const double fd = (up - down) / (2 * h);
    const double err = std::abs(g[i] - fd) / std::max(1.0, std::abs(fd));
    if (err > worst) worst = err, at = i;
  }
  EXPECT_LE(worst, 1e-6) << what << ": worst element " << at << " of " << x.numel();
}

}  // namespace

TEST(GradcheckKernels, RmsNorm) {
  Tensor x = randn({2, 3, 13}), g = randn({13}), r = randn({2, 3, 13});
  Tensor y = empty({2, 3, 13}), rstd = empty({6});
  auto loss = [&] {
    cpu::rmsnorm_forward(x, g, 1e-5f, y, rstd);
    return dot(y, r);
  };
  loss();
  Tensor dx = zeros({2, 3, 13}), dg = zeros({13});
  cpu::rmsnorm_backward(r, x, g, rstd, dx, dg);
  expect_fd("rmsnorm dx", x, dx, loss);
  expect_fd("rmsnorm dg", g, dg, loss);
}

TEST(GradcheckKernels, SwiGLU) {
  Tensor gate = randn({4, 7}, 2.0), up = randn({4, 7}), r = randn({4, 7}), out = empty({4, 7});
  auto loss = [&] {
    cpu::swiglu_forward(gate, up, out);
    return dot(out, r);
  };
  Tensor dgate = zeros({4, 7}), dup = zeros({4, 7});
  cpu::swiglu_backward(r, gate, up, dgate, dup);
  expect_fd("swiglu dgate", gate, dgate, loss);
  expect_fd("swiglu dup", up, dup, loss);
}

TEST(GradcheckKernels, Rope) {
  const Shape s{2, 5, 3, 8};
  Tensor x = randn(s), r = randn(s), out = empty(s);
  auto loss = [&] {
    cpu::rope_forward(x, 3, 10000.f, out);
    return dot(out, r);
  };
  Tensor dx = zeros(s);
  cpu::rope_backward(r, 3, 10000.f, dx);
  expect_fd("rope dx", x, dx, loss);
}

TEST(GradcheckKernels, Attention) {
  for (const Shape& s : {Shape{2, 5, 3, 8}, Shape{1, 70, 1, 4}}) {  // the second: two tiles
    const float scale = 0.35f;
    Tensor q = randn(s), k = randn(s), v = randn(s), r = randn(s);
    Tensor o = empty(s), lse = empty({s[0], s[2], s[1]});
    auto loss = [&] {
      cpu::attention_forward(q, k, v, scale, o, lse);
      return dot(o, r);
    };
    loss();
    Tensor dq = zeros(s), dk = zeros(s), dv = zeros(s);
    cpu::attention_backward(r, q, k, v, o, lse, scale, dq, dk, dv);
    expect_fd("attention dq", q, dq, loss);
    expect_fd("attention dk", k, dk, loss);
    expect_fd("attention dv", v, dv, loss);
  }
}

TEST(GradcheckKernels, EmbeddingWithIdsOutsideTheShard) {
  // Rows 2..7 live in this shard; ids 0, 1 and 8 give zero rows and no gradient.
  Tensor id = ids(30, 9), table = randn({6, 5}), r = randn({30, 5}), out = empty({30, 5});
  auto loss = [&] {
    cpu::embedding_forward(id, table, 2, out);
    return dot(out, r);
  };
  Tensor dtable = zeros({6, 5});
  cpu::embedding_backward(id, r, 2, dtable);
  expect_fd("embedding dtable", table, dtable, loss);
}

TEST(GradcheckKernels, CrossEntropyWithIgnoredTargets) {
  Tensor z = randn({7, 11}, 2.0), tg = ids(7, 11), r = randn({7});
  tg.data<int32_t>()[1] = -1;
  tg.data<int32_t>()[4] = -1;
  Tensor loss_t = empty({7}), lse = empty({7});
  auto loss = [&] {
    cpu::cross_entropy_forward(z, tg, 0, loss_t, lse);
    return dot(loss_t, r);
  };
  loss();
  Tensor dz = zeros({7, 11});
  cpu::cross_entropy_backward(z, tg, 0, lse, r, dz);
  expect_fd("cross_entropy dlogits", z, dz, loss);
  for (int64_t j = 0; j < 11; j++) EXPECT_EQ(dz.data<double>()[11 + j], 0.0);  // ignored row
}

// y = x·Wᵀ; dx = dy·W and dW = dyᵀ·x through the trans flags, accumulated with beta = 1 onto
// gradients that already hold values.
TEST(GradcheckKernels, MatmulAsALinearLayer) {
  Tensor x = randn({2, 3, 13}), w = randn({5, 13}), r = randn({2, 3, 5}), y = empty({2, 3, 5});
  auto loss = [&] {
    cpu::matmul(x, false, w, true, y, 1.f, 0.f, nullptr);
    return dot(y, r);
  };
  Tensor dx0 = randn({2, 3, 13}), dw0 = randn({5, 13});
  Tensor dx = dx0.clone(), dw = dw0.clone();
  cpu::matmul(r, false, w, false, dx, 1.f, 1.f, nullptr);
  cpu::matmul(r, true, x, false, dw, 1.f, 1.f, nullptr);
  for (int64_t i = 0; i < dx.numel(); i++) dx.data<double>()[i] -= dx0.data<double>()[i];
  for (int64_t i = 0; i < dw.numel(); i++) dw.data<double>()[i] -= dw0.data<double>()[i];
  expect_fd("linear dx", x, dx, loss);
  expect_fd("linear dW", w, dw, loss);
}

TEST(GradcheckKernels, TernaryLinearStraightThrough) {
  Tensor x = randn({7, 13}), w = randn({5, 13}, 0.05), r = randn({7, 5}), y = empty({7, 5});
  Tensor t = empty({5, 13}), gamma = Tensor::empty({1}, DType::f32);
  cpu::ternary_quantize(w, 1e-5f, t, gamma);
  std::set<double> trits(t.data<double>(), t.data<double>() + t.numel());
  EXPECT_EQ(trits, (std::set<double>{-1, 0, 1}));

  // dX = dY·(γ·T), with γ as matmul's device-side scale.
  auto loss_x = [&] {
    cpu::matmul(x, false, t, true, y, 1.f, 0.f, &gamma);
    return dot(y, r);
  };
  Tensor dx = zeros({7, 13});
  cpu::matmul(r, false, t, false, dx, 1.f, 1.f, &gamma);
  expect_fd("ternary dx", x, dx, loss_x);

  // Straight-through: the latent W receives dYᵀ·X, the gradient of the float layer evaluated at
  // the effective weight W' = γ·T.
  Tensor dw = zeros({5, 13});
  cpu::matmul(r, true, x, false, dw, 1.f, 1.f, nullptr);
  Tensor weff = empty({5, 13});
  for (int64_t i = 0; i < weff.numel(); i++)
    weff.data<double>()[i] = double(gamma.data<float>()[0]) * t.data<double>()[i];
  auto loss_w = [&] {
    cpu::matmul(x, false, weff, true, y, 1.f, 0.f, nullptr);
    return dot(y, r);
  };
  EXPECT_NEAR(loss_w(), loss_x(), 1e-12 * std::abs(loss_x()));  // the same layer
  expect_fd("ternary dW (straight-through)", weff, dw, loss_w);
}
