// Every CPU reference kernel against an independent naive implementation in double loops, on
// fresh random inputs at odd shapes, in f32 (relative error <= 1e-5) and f64 (<= 1e-12); plus the
// contracts the headers state: exact trits and γ with ties rounded away from zero, zero embedding
// rows outside the shard, ignored targets, AdamW against a scalar loop, backward ops that
// accumulate, the CPU's capability errors (f32 and f64 only; bad arguments are refused before,
// tests/test_kernel_args.cpp), and reductions that do not depend on the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>

#include "core/rng.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

using namespace spectra;
namespace cpu = spectra::kernels::cpu;
using Vec = std::vector<double>;

namespace {

uint64_t g_seed = 1;

// N(0, scale²) values from a fresh stream (Box-Muller in double), stored in dt.
Tensor randn(Shape s, DType dt, double scale = 1.0) {
  Tensor t = Tensor::empty(std::move(s), DType::f64);
  Rng rng{g_seed++, 0};
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<double>()[i] = scale * std::sqrt(-2 * std::log(rng.uniform())) *
                          std::cos(6.283185307179586 * rng.uniform());
  return dt == DType::f64 ? t : t.to(dt);
}
Tensor poisoned(Shape s, DType dt) { return Tensor::full(std::move(s), NAN, dt); }
Tensor ids(int64_t n, int64_t lo, int64_t hi) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  Rng rng{g_seed++, 0};
  for (auto& x : v) x = int32_t(lo + int64_t(rng.below(uint64_t(hi - lo))));
  return Tensor::from(v, {n});
}

// max |got − want| / max |want|; infinite when an element was left unwritten (NaN).
double rel_err(const Tensor& got, const Vec& want) {
  Vec a = got.to_doubles();
  EXPECT_EQ(a.size(), want.size());
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i])) return INFINITY;
    num = std::max(num, std::abs(a[i] - want[i]));
    den = std::max(den, std::abs(want[i]));
  }
  return num / den;
}
double max_abs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}
double tol(DType dt) { return dt == DType::f64 ? 1e-12 : 1e-5; }

// Runs fn and expects an Error whose message contains `text`.
void expect_error(const std::function<void()>& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

class KernelsCpu : public ::testing::TestWithParam<DType> {};

}  // namespace

TEST_P(KernelsCpu, MatmulTransposesAlphaBetaAndScale) {
  const DType dt = GetParam();
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                         {7, 13, 5},
                         {33, 64, 17},
                         {4, 0, 3},
                         {600, 96, 40},
                         {40, 96, 600}})
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (float beta : {0.f, 0.3f})
          for (bool scaled : {false, true}) {
            Tensor a = randn(ta ? Shape{k, m} : Shape{m, k}, dt);
            Tensor b = randn(tb ? Shape{n, k} : Shape{k, n}, dt), c0 = randn({m, n}, dt);
            Tensor c = beta == 0 ? poisoned({m, n}, dt) : c0.clone();  // beta 0 overwrites
            Tensor s = Tensor::full({1}, 1.5, DType::f32);
            cpu::matmul(a, ta, b, tb, c, 0.7f, beta, scaled ? &s : nullptr);
            Vec A = a.to_doubles(), B = b.to_doubles(), C = c0.to_doubles(), want(size_t(m * n));
            const double alpha = double(0.7f) * (scaled ? 1.5 : 1.0);
            for (int64_t i = 0; i < m; i++)
              for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t l = 0; l < k; l++)
                  acc +=
                      A[size_t(ta ? l * m + i : i * k + l)] * B[size_t(tb ? j * k + l : l * n + j)];
                want[size_t(i * n + j)] =
                    alpha * acc + (beta == 0 ? 0 : beta * C[size_t(i * n + j)]);
              }
            EXPECT_LE(rel_err(c, want), tol(dt)) << m << "x" << k << "x" << n << " " << ta << tb;
          }
}

TEST_P(KernelsCpu, MatmulFlattensLeadingDimensions) {
  const DType dt = GetParam();
  Tensor x = randn({2, 3, 13}, dt), w = randn({5, 13}, dt), y = poisoned({2, 3, 5}, dt);
  cpu::matmul(x, false, w, true, y, 1.f, 0.f, nullptr);
  Tensor y2 = poisoned({6, 5}, dt);
  cpu::matmul(x.view({6, 13}), false, w, true, y2, 1.f, 0.f, nullptr);
  EXPECT_EQ(y.to_doubles(), y2.to_doubles());
}

TEST_P(KernelsCpu, TernaryQuantizeValuesAndGamma) {
  const DType dt = GetParam();
  const float eps = 1e-5f;
  for (Shape s : {Shape{1, 1}, Shape{7, 13}, Shape{64, 33}, Shape{3, 4, 5}})
    for (DType tdt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      Tensor w = randn(s, dt, 0.02), t = poisoned(s, tdt), gamma = poisoned({1}, DType::f32);
      cpu::ternary_quantize(w, eps, t, gamma);
      Vec W = w.to_doubles(), T = t.to_doubles();
      double sum = 0;
      for (double x : W) sum += std::abs(x);
      const float g = float(double(eps) + sum / double(W.size()));
      EXPECT_EQ(gamma.data<float>()[0], g);
      for (size_t i = 0; i < W.size(); i++) {
        EXPECT_TRUE(T[i] == -1 || T[i] == 0 || T[i] == 1) << T[i];
        const double r = W[i] / double(g);
        if (std::abs(std::abs(r) - 0.5) < 1e-6) continue;  // the f32 division may round across
        EXPECT_EQ(T[i], std::max(-1.0, std::min(1.0, std::round(r)))) << i << " " << r;
      }
    }
}

// Per-block scales: every row block (axis 0) or column block (axis 1) has γ = eps + mean|block|
// and effective weights γ·trit; one group is ternary_quantize's γ and trits, bit for bit.
TEST_P(KernelsCpu, TernaryQuantizeGroups) {
  const DType dt = GetParam();
  const float eps = 1e-5f;
  for (int axis : {0, 1})
    for (int64_t groups : {1, 2, 3}) {
      const int64_t rows = 6, cols = 12;
      Tensor w = randn({rows, cols}, dt, 0.02), e = poisoned({rows, cols}, dt);
      Tensor gamma = poisoned({groups}, DType::f32);
      cpu::ternary_quantize_groups(w, eps, groups, axis, e, gamma);
      Vec W = w.to_doubles(), E = e.to_doubles();
      const int64_t span = (axis == 0 ? rows : cols) / groups;
      auto group_of = [&](int64_t i) { return (axis == 0 ? i / cols : i % cols) / span; };
      for (int64_t g = 0; g < groups; g++) {
        double sum = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < rows * cols; i++)
          if (group_of(i) == g) sum += std::abs(W[size_t(i)]), n++;
        EXPECT_EQ(gamma.data<float>()[g], float(double(eps) + sum / double(n))) << axis << " " << g;
      }
      for (int64_t i = 0; i < rows * cols; i++) {
        const double g = gamma.data<float>()[group_of(i)], r = W[size_t(i)] / g;
        if (std::abs(std::abs(r) - 0.5) < 1e-6) continue;
        EXPECT_EQ(E[size_t(i)], double(dt == DType::f32 ? double(float(g)) : g) *
                                    std::max(-1.0, std::min(1.0, std::round(r))));
      }
      if (groups == 1) {
        Tensor t = poisoned({rows, cols}, dt), g1 = poisoned({1}, DType::f32);
        cpu::ternary_quantize(w, eps, t, g1);
        EXPECT_EQ(g1.item(), gamma.item());
      }
    }
}

TEST_P(KernelsCpu, TernaryTiesRoundHalfAwayFromZero) {
  const DType dt = GetParam();
  // mean|w| = 1 (then 2), eps 0: w/γ hits the ties ±0.5 and ±1.5 exactly.
  const Vec w = {0.5, -0.5, 1.5, -1.5, 0.25, -0.25, 1.75, -1.75};
  const Vec want = {1, -1, 1, -1, 0, 0, 1, -1};
  for (double k : {1.0, 2.0}) {
    Vec wk = w;
    for (double& x : wk) x *= k;
    Tensor wt = Tensor::from(wk, {2, 4}).to(dt), t = poisoned({2, 4}, dt);
    Tensor gamma = poisoned({1}, DType::f32);
    cpu::ternary_quantize(wt, 0.f, t, gamma);
    EXPECT_EQ(gamma.item(), k);
    EXPECT_EQ(t.to_doubles(), want);
  }
}

TEST_P(KernelsCpu, RmsNormForward) {
  const DType dt = GetParam();
  for (Shape s : {Shape{1, 1}, Shape{7, 13}, Shape{5, 64}, Shape{2, 3, 13}}) {
    const int64_t d = s.back(), n = shape_numel(s) / d;
    Tensor x = randn(s, dt), g = randn({d}, dt), y = poisoned(s, dt), rstd = poisoned({n}, dt);
    cpu::rmsnorm_forward(x, g, 1e-5f, y, rstd);
    Vec X = x.to_doubles(), G = g.to_doubles(), Y(X.size()), R(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; r++) {
      double ss = 0;
      for (int64_t i = 0; i < d; i++) ss += X[size_t(r * d + i)] * X[size_t(r * d + i)];
      R[size_t(r)] = 1 / std::sqrt(ss / double(d) + double(1e-5f));
      for (int64_t i = 0; i < d; i++)
        Y[size_t(r * d + i)] = X[size_t(r * d + i)] * R[size_t(r)] * G[size_t(i)];
    }
    EXPECT_LE(rel_err(y, Y), tol(dt)) << shape_str(s);
    EXPECT_LE(rel_err(rstd, R), tol(dt)) << shape_str(s);
  }
}

// The fused residual add + RMSNorm is the composition of add and rmsnorm: the same h, y and rstd
// bit for bit, and gradients equal to the unfused chain's (which rounds dh once more).
TEST_P(KernelsCpu, AddRmsNormEqualsAddThenRmsNorm) {
  const DType dt = GetParam();
  const int64_t n = 5, d = 24;
  Tensor x = randn({n, d}, dt), r = randn({n, d}, dt), g = randn({d}, dt);
  Tensor h = poisoned({n, d}, dt), y = poisoned({n, d}, dt), rstd = poisoned({n}, dt);
  cpu::add_rmsnorm_forward(x, r, g, 1e-5f, h, y, rstd);
  Tensor h2 = Tensor::empty({n, d}, dt), y2 = Tensor::empty({n, d}, dt),
         rstd2 = Tensor::empty({n}, dt);
  cpu::add(x, r, h2);
  cpu::rmsnorm_forward(h2, g, 1e-5f, y2, rstd2);
  EXPECT_EQ(h.to_doubles(), h2.to_doubles());
  EXPECT_EQ(y.to_doubles(), y2.to_doubles());
  EXPECT_EQ(rstd.to_doubles(), rstd2.to_doubles());
  Tensor dy = randn({n, d}, dt), dh = randn({n, d}, dt);
  Tensor dx = Tensor::zeros({n, d}, dt), dr = Tensor::zeros({n, d}, dt),
         dg = Tensor::zeros({d}, dt);
  cpu::add_rmsnorm_backward(dy, dh, h, g, rstd, dx, dr, dg);
  Tensor dh2 = dh.clone(), dg2 = Tensor::zeros({d}, dt);
  cpu::rmsnorm_backward(dy, h2, g, rstd2, dh2, dg2);  // dh2 = dh + the norm's part
  EXPECT_LE(rel_err(dx, dh2.to_doubles()), tol(dt));
  EXPECT_EQ(dx.to_doubles(), dr.to_doubles());
  EXPECT_EQ(dg.to_doubles(), dg2.to_doubles());
}

TEST_P(KernelsCpu, SwiGLUForward) {
  const DType dt = GetParam();
  for (Shape s : {Shape{1}, Shape{7, 13}, Shape{3, 5, 67}}) {
    Tensor g = randn(s, dt, 3.0), u = randn(s, dt), o = poisoned(s, dt);
    cpu::swiglu_forward(g, u, o);
    Vec G = g.to_doubles(), U = u.to_doubles(), want(G.size());
    for (size_t i = 0; i < G.size(); i++) want[i] = G[i] / (1 + std::exp(-G[i])) * U[i];
    EXPECT_LE(rel_err(o, want), tol(dt)) << shape_str(s);
  }
}

TEST_P(KernelsCpu, RopeForward) {
  const DType dt = GetParam();
  for (auto [s, pos0, theta] : {std::tuple{Shape{1, 1, 1, 2}, int64_t(0), 10000.f},
                                {Shape{2, 5, 3, 8}, int64_t(3), 10000.f},
                                {Shape{1, 7, 2, 16}, int64_t(100), 500000.f}}) {
    Tensor x = randn(s, dt), out = poisoned(s, dt);
    cpu::rope_forward(x, pos0, theta, out);
    const int64_t t = s[1], h = s[2], dh = s[3], half = dh / 2;
    Vec X = x.to_doubles(), want(X.size());
    for (int64_t r = 0; r < s[0] * t * h; r++) {
      const int64_t pos = pos0 + (r / h) % t;
      for (int64_t i = 0; i < half; i++) {
        // inv_freq and the angle in f32, as Hugging Face computes them.
        const float inv = 1.0f / std::pow(theta, float(2 * i) / float(dh));
        const float ang = float(pos) * inv;
        const double c = std::cos(ang), sn = std::sin(ang);
        const double x1 = X[size_t(r * dh + i)], x2 = X[size_t(r * dh + half + i)];
        want[size_t(r * dh + i)] = x1 * c - x2 * sn;
        want[size_t(r * dh + half + i)] = x2 * c + x1 * sn;
      }
    }
    EXPECT_LE(rel_err(out, want), tol(dt)) << shape_str(s);
  }
}

TEST_P(KernelsCpu, AttentionForwardCausalWithTqAtMostTk) {
  const DType dt = GetParam();
  for (auto [b, tq, tk, h, dh] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1, 8},
        {2, 5, 5, 3, 8},
        {1, 7, 7, 2, 16},
        {2, 3, 9, 3, 8},
        {1, 1, 6, 2, 8},
        {1, 130, 130, 2, 8},  // several tiles of queries
        {1, 70, 150, 1, 8}}) {
    Tensor q = randn({b, tq, h, dh}, dt), k = randn({b, tk, h, dh}, dt),
           v = randn({b, tk, h, dh}, dt);
    Tensor o = poisoned({b, tq, h, dh}, dt), lse = poisoned({b, h, tq}, dt);
    const float scale = float(1 / std::sqrt(double(dh)));
    cpu::attention_forward(q, k, v, scale, o, lse);
    Vec Q = q.to_doubles(), K = k.to_doubles(), V = v.to_doubles();
    Vec O(Q.size()), L(size_t(b * h * tq));
    auto at = [&](int64_t bi, int64_t t, int64_t hi, int64_t T) {
      return size_t(((bi * T + t) * h + hi) * dh);
    };
    for (int64_t bi = 0; bi < b; bi++)
      for (int64_t hi = 0; hi < h; hi++)
        for (int64_t i = 0; i < tq; i++) {
          const int64_t keys = tk - tq + i + 1;
          Vec sc(static_cast<size_t>(keys));
          double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < keys; j++) {
            double dot = 0;
            for (int64_t d = 0; d < dh; d++)
              dot += Q[at(bi, i, hi, tq) + d] * K[at(bi, j, hi, tk) + d];
            sc[size_t(j)] = dot * double(scale);
            mx = std::max(mx, sc[size_t(j)]);
          }
          for (double x : sc) sum += std::exp(x - mx);
          L[size_t((bi * h + hi) * tq + i)] = mx + std::log(sum);
          for (int64_t j = 0; j < keys; j++)
            for (int64_t d = 0; d < dh; d++)
              O[at(bi, i, hi, tq) + d] +=
                  std::exp(sc[size_t(j)] - mx) / sum * V[at(bi, j, hi, tk) + d];
        }
    EXPECT_LE(rel_err(o, O), tol(dt)) << tq << " " << tk;
    EXPECT_LE(rel_err(lse, L), tol(dt)) << tq << " " << tk;
  }
}

TEST_P(KernelsCpu, EmbeddingForwardZeroRowsOutsideTheShard) {
  const DType dt = GetParam();
  for (auto [n, v, d, off] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 0},
                              {7, 5, 13, 0},
                              {50, 20, 9, 7}}) {
    Tensor id = ids(n, -2, v + off + 4), table = randn({v, d}, dt), out = poisoned({n, d}, dt);
    cpu::embedding_forward(id, table, off, out);
    Vec T = table.to_doubles(), want(size_t(n * d), 0.0);
    const int32_t* ip = id.data<int32_t>();
    for (int64_t i = 0; i < n; i++)
      if (ip[i] >= off && ip[i] < off + v)
        for (int64_t c = 0; c < d; c++) want[size_t(i * d + c)] = T[size_t((ip[i] - off) * d + c)];
    EXPECT_EQ(out.to_doubles(), want);
  }
}

TEST_P(KernelsCpu, CrossEntropyForwardIgnoresNegativeTargets) {
  const DType dt = GetParam();
  for (auto [n, v] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {5, 1000}}) {
    Tensor z = randn({n, v}, dt, 3.0), tg = ids(n, 0, v);
    tg.data<int32_t>()[n / 2] = -1;
    if (n > 2) tg.data<int32_t>()[0] = -100;
    Tensor loss = poisoned({n}, dt), lse = poisoned({n}, dt);
    cpu::cross_entropy_forward(z, tg, 0, loss, lse);
    Vec Z = z.to_doubles(), L(static_cast<size_t>(n)), S(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; r++) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < v; j++) mx = std::max(mx, Z[size_t(r * v + j)]);
      for (int64_t j = 0; j < v; j++) sum += std::exp(Z[size_t(r * v + j)] - mx);
      S[size_t(r)] = mx + std::log(sum);
      const int32_t t = tg.data<int32_t>()[r];
      L[size_t(r)] = t < 0 ? 0 : S[size_t(r)] - Z[size_t(r * v + t)];
    }
    EXPECT_LE(rel_err(loss, L), tol(dt)) << n << "x" << v;
    EXPECT_LE(rel_err(lse, S), tol(dt)) << n << "x" << v;
    EXPECT_EQ(loss.to_doubles()[size_t(n / 2)], 0.0);
  }
}

// The mean over the kept targets, and its gradient spread over every row; a batch with no kept
// target has mean 0 (count clamped to 1).
TEST_P(KernelsCpu, CrossEntropyMeanOverKeptTargets) {
  const DType dt = GetParam();
  const int64_t n = 9;
  Tensor loss = randn({n}, dt), tg = ids(n, 0, 5);
  tg.data<int32_t>()[2] = tg.data<int32_t>()[7] = -1;
  loss.copy_from(Tensor::from(
                     [&] {
                       Vec l = loss.to_doubles();
                       l[2] = l[7] = 0;  // as cross_entropy_forward leaves ignored rows
                       return l;
                     }(),
                     {n})
                     .to(dt));
  Tensor mean = poisoned({1}, dt), count = poisoned({1}, dt);
  cpu::cross_entropy_mean(loss, tg, mean, count);
  double sum = 0;
  for (double x : loss.to_doubles()) sum += x;
  EXPECT_LE(rel_err(mean, {sum / 7}), tol(dt));
  EXPECT_EQ(count.to_doubles()[0], 7.0);
  Tensor dloss = poisoned({n}, dt);
  cpu::cross_entropy_mean_backward(Tensor::full({1}, 3.5, dt), count, dloss);
  EXPECT_LE(rel_err(dloss, Vec(size_t(n), 0.5)), tol(dt));
  Tensor none = Tensor::full({n}, -1.0, DType::f64).to(DType::i32);
  cpu::cross_entropy_mean(Tensor::zeros({n}, dt), none, mean, count);
  EXPECT_EQ(mean.to_doubles()[0], 0.0);
  EXPECT_EQ(count.to_doubles()[0], 1.0);
}

// Vocabulary-parallel shards: each shard's loss, lse and gradient, combined as
// autograd/parallel.cpp does (lse = log Σ exp(lse_s); the target term from its owner), equal
// the unsharded kernel's.
TEST_P(KernelsCpu, CrossEntropyShardsCombineToTheWhole) {
  const DType dt = GetParam();
  const int64_t n = 9, v = 12, shards = 3, w = v / shards;
  Tensor z = randn({n, v}, dt, 3.0), tg = ids(n, 0, v), dl = randn({n}, dt);
  tg.data<int32_t>()[4] = -1;
  Tensor loss = poisoned({n}, dt), lse = poisoned({n}, dt), g = Tensor::zeros({n, v}, dt);
  cpu::cross_entropy_forward(z, tg, 0, loss, lse);
  cpu::cross_entropy_backward(z, tg, 0, lse, dl, g);
  Vec L = loss.to_doubles(), S = lse.to_doubles(), G = g.to_doubles(), Z = z.to_doubles();
  Vec sum_exp(size_t(n), 0.0), target(size_t(n), 0.0);
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < shards; s++) {
    Vec zs;
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < w; j++) zs.push_back(Z[size_t(r * v + s * w + j)]);
    Tensor part = Tensor::from(zs, {n, w}).to(dt), pl = poisoned({n}, dt), ps = poisoned({n}, dt);
    cpu::cross_entropy_forward(part, tg, s * w, pl, ps);
    Vec PL = pl.to_doubles(), PS = ps.to_doubles();
    for (int64_t r = 0; r < n; r++) {
      sum_exp[size_t(r)] += std::exp(PS[size_t(r)]);
      target[size_t(r)] += PS[size_t(r)] - PL[size_t(r)];  // the logit on its owner, else 0
    }
    parts.push_back(part);
  }
  for (int64_t r = 0; r < n; r++) {
    const double l = std::log(sum_exp[size_t(r)]);
    EXPECT_NEAR(l, S[size_t(r)], 1e-5 * std::abs(S[size_t(r)])) << r;
    if (tg.data<int32_t>()[r] >= 0) EXPECT_NEAR(l - target[size_t(r)], L[size_t(r)], 1e-5) << r;
  }
  for (int64_t s = 0; s < shards; s++) {
    Tensor gs = Tensor::zeros({n, w}, dt);
    cpu::cross_entropy_backward(parts[size_t(s)], tg, s * w, lse, dl, gs);
    Vec GS = gs.to_doubles();
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < w; j++)
        EXPECT_NEAR(GS[size_t(r * w + j)], G[size_t(r * v + s * w + j)], tol(dt)) << r << "," << j;
  }
}

TEST_P(KernelsCpu, ElementwiseOps) {
  const DType dt = GetParam();
  Tensor a = randn({7, 13}, dt), b = randn({7, 13}, dt), out = poisoned({7, 13}, dt);
  Vec A = a.to_doubles(), B = b.to_doubles(), want(A.size());
  cpu::add(a, b, out);
  for (size_t i = 0; i < A.size(); i++) want[i] = A[i] + B[i];
  EXPECT_LE(rel_err(out, want), tol(dt));
  cpu::axpy(0.3f, a, b);
  for (size_t i = 0; i < A.size(); i++) want[i] = B[i] + double(0.3f) * A[i];
  EXPECT_LE(rel_err(b, want), tol(dt));
  cpu::scale(a, -1.5f);
  for (size_t i = 0; i < A.size(); i++) want[i] = -1.5 * A[i];
  EXPECT_LE(rel_err(a, want), tol(dt));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, KernelsCpu, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Every float dtype to every float dtype, rounding exactly as Tensor::to() does.
TEST(KernelsCpuElementwise, CastBetweenEveryFloatDtype) {
  const std::vector<DType> all = {DType::f32, DType::f64, DType::bf16, DType::f16};
  Tensor x = randn({5, 67}, DType::f64, 100.0);
  x.data<double>()[0] = 1e6;   // overflows f16
  x.data<double>()[1] = 3e-7;  // an f16 subnormal
  for (DType from : all)
    for (DType to : all) {
      Tensor src = x.to(from), dst = poisoned({5, 67}, to);
      cpu::cast(src, dst);
      EXPECT_EQ(dst.to_doubles(), src.to(to).to_doubles())
          << dtype_name(from) << " -> " << dtype_name(to);
    }
  Tensor bad = Tensor::empty({5, 67}, DType::i32), dst = Tensor::empty({5, 67});
  expect_error([&] { cpu::cast(bad, dst); }, "cast: expected a float dtype");
}

TEST(KernelsCpuElementwise, SumSquaresAndNonFinite) {
  std::vector<Tensor> xs = {randn({7, 13}, DType::f32), randn({100003}, DType::f64),
                            randn({3}, DType::bf16)};
  double want = 0;
  for (const Tensor& x : xs)
    for (double v : x.to_doubles()) want += v * v;
  bool nonfinite = true;
  EXPECT_NEAR(cpu::sum_squares(xs, &nonfinite), want, 1e-12 * want);
  EXPECT_FALSE(nonfinite);
  EXPECT_NEAR(cpu::sum_squares(xs, nullptr), want, 1e-12 * want);
  for (double bad : {double(INFINITY), double(-INFINITY), double(NAN)}) {
    Tensor y = xs[1].clone();
    y.data<double>()[50000] = bad;
    cpu::sum_squares({xs[0], y}, &nonfinite);
    EXPECT_TRUE(nonfinite) << bad;
  }
  EXPECT_EQ(cpu::sum_squares({}, &nonfinite), 0.0);
  EXPECT_FALSE(nonfinite);
}

// Three steps against torch.optim.AdamW's arithmetic written out in double: decoupled decay,
// bias-corrected moments, eps added after dividing by sqrt(bc2).
TEST(KernelsCpuAdamW, ThreeStepsMatchAScalarLoop) {
  kernels::AdamWHyper h;
  h.lr = 1e-2f;
  h.weight_decay = 0.1f;
  h.grad_scale = 0.5f;
  const std::vector<int64_t> sizes = {1, 7, 1000};
  const std::vector<DType> computes = {DType::f32, DType::bf16, DType::f16};
  std::vector<kernels::AdamWTensor> ts;
  std::vector<Vec> p, m, v;
  for (size_t i = 0; i < sizes.size(); i++) {
    kernels::AdamWTensor t;
    t.param = randn({sizes[i]}, DType::f32);
    t.grad = Tensor::empty({sizes[i]});
    t.m = Tensor::zeros({sizes[i]});
    t.v = Tensor::zeros({sizes[i]});
    t.compute = poisoned({sizes[i]}, computes[i]);
    t.decay = i != 1;
    ts.push_back(t);
    p.push_back(t.param.to_doubles());
    m.push_back(Vec(size_t(sizes[i]), 0.0));
    v.push_back(Vec(size_t(sizes[i]), 0.0));
  }
  const double b1 = h.beta1, b2 = h.beta2, lr = h.lr, eps = h.eps;
  for (int64_t step = 1; step <= 3; step++) {
    h.step = step;
    for (size_t i = 0; i < ts.size(); i++) ts[i].grad.copy_from(randn({sizes[i]}, DType::f32));
    cpu::adamw_step(ts, h);
    for (size_t i = 0; i < ts.size(); i++) {
      const Vec g = ts[i].grad.to_doubles();
      const double wd = ts[i].decay ? double(h.weight_decay) : 0.0;
      const double bc1 = 1 - std::pow(b1, double(step)), bc2 = 1 - std::pow(b2, double(step));
      for (size_t j = 0; j < g.size(); j++) {
        const double gj = g[j] * double(h.grad_scale);
        p[i][j] *= 1 - lr * wd;
        m[i][j] = b1 * m[i][j] + (1 - b1) * gj;
        v[i][j] = b2 * v[i][j] + (1 - b2) * gj * gj;
        p[i][j] -= lr / bc1 * m[i][j] / (std::sqrt(v[i][j]) / std::sqrt(bc2) + eps);
      }
      EXPECT_LE(rel_err(ts[i].param, p[i]), 1e-5) << "step " << step << " tensor " << i;
      EXPECT_LE(rel_err(ts[i].m, m[i]), 1e-5) << "step " << step << " tensor " << i;
      EXPECT_LE(rel_err(ts[i].v, v[i]), 1e-5) << "step " << step << " tensor " << i;
      EXPECT_EQ(ts[i].compute.to_doubles(), ts[i].param.to(computes[i]).to_doubles());
    }
  }
}

// Backward kernels in f32 agree with f64 on the same inputs, and accumulate: a second call on
// the same gradients doubles them.
namespace {
struct BackwardCase {
  const char* name;
  std::vector<Tensor> inputs;  // f64
  std::vector<Shape> grads;
  // Runs forward (for saved statistics) and backward on inputs of one dtype.
  std::function<void(const std::vector<Tensor>&, std::vector<Tensor>&)> run;
};

std::vector<BackwardCase> backward_cases() {
  const DType f = DType::f64;
  std::vector<BackwardCase> cs;
  cs.push_back({"rmsnorm",
                {randn({7, 13}, f), randn({13}, f), randn({7, 13}, f)},
                {{7, 13}, {13}},
                [](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  Tensor y = Tensor::empty({7, 13}, in[0].dtype());
                  Tensor rstd = Tensor::empty({7}, in[0].dtype());
                  cpu::rmsnorm_forward(in[0], in[1], 1e-5f, y, rstd);
                  cpu::rmsnorm_backward(in[2], in[0], in[1], rstd, g[0], g[1]);
                }});
  cs.push_back({"swiglu",
                {randn({5, 9}, f, 3.0), randn({5, 9}, f), randn({5, 9}, f)},
                {{5, 9}, {5, 9}},
                [](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  cpu::swiglu_backward(in[2], in[0], in[1], g[0], g[1]);
                }});
  cs.push_back({"rope",
                {randn({2, 5, 3, 8}, f)},
                {{2, 5, 3, 8}},
                [](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  cpu::rope_backward(in[0], 3, 10000.f, g[0]);
                }});
  const Shape qs{2, 70, 3, 8};  // two tiles of queries
  cs.push_back({"attention",
                {randn(qs, f), randn(qs, f), randn(qs, f), randn(qs, f)},
                {qs, qs, qs},
                [qs](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  Tensor o = Tensor::empty(qs, in[0].dtype()),
                         lse = Tensor::empty({2, 3, 70}, in[0].dtype());
                  cpu::attention_forward(in[0], in[1], in[2], 0.35f, o, lse);
                  cpu::attention_backward(in[3], in[0], in[1], in[2], o, lse, 0.35f, g[0], g[1],
                                          g[2]);
                }});
  Tensor id = ids(30, 0, 9);
  cs.push_back({"embedding",
                {randn({30, 5}, f)},
                {{6, 5}},
                [id](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  cpu::embedding_backward(id, in[0], 2, g[0]);
                }});
  Tensor tg = ids(7, 0, 11);
  tg.data<int32_t>()[2] = -1;
  cs.push_back({"cross_entropy",
                {randn({7, 11}, f, 2.0), randn({7}, f)},
                {{7, 11}},
                [tg](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  Tensor loss = Tensor::empty({7}, in[0].dtype()),
                         lse = Tensor::empty({7}, in[0].dtype());
                  cpu::cross_entropy_forward(in[0], tg, 0, loss, lse);
                  cpu::cross_entropy_backward(in[0], tg, 0, lse, in[1], g[0]);
                }});
  cs.push_back({"linear",
                {randn({7, 13}, f), randn({5, 13}, f), randn({7, 5}, f)},
                {{7, 13}, {5, 13}},
                [](const std::vector<Tensor>& in, std::vector<Tensor>& g) {
                  cpu::matmul(in[2], false, in[1], false, g[0], 1.f, 1.f, nullptr);
                  cpu::matmul(in[2], true, in[0], false, g[1], 1.f, 1.f, nullptr);
                }});
  return cs;
}

}  // namespace

TEST(KernelsCpuBackward, F32MatchesF64AndGradientsAccumulate) {
  for (BackwardCase& c : backward_cases()) {
    std::vector<Vec> once64;
    for (DType dt : {DType::f64, DType::f32}) {
      // Both dtypes run on the f32-rounded inputs, so they differ only by arithmetic.
      std::vector<Tensor> in, g;
      for (const Tensor& x : c.inputs) in.push_back(x.to(DType::f32).to(dt));
      for (const Shape& s : c.grads) g.push_back(Tensor::zeros(s, dt));
      c.run(in, g);
      std::vector<Vec> once;
      for (const Tensor& x : g) once.push_back(x.to_doubles());
      c.run(in, g);
      for (size_t i = 0; i < g.size(); i++) {
        const std::string what = fmt::format("{} gradient {} in {}", c.name, i, dtype_name(dt));
        Vec twice = once[i];
        for (double& x : twice) x *= 2;
        EXPECT_LE(rel_err(g[i], twice), tol(dt)) << what << ": a second call must add";
        if (dt == DType::f64) {
          EXPECT_GT(max_abs(once[i]), 0) << what;
          once64.push_back(once[i]);
        } else {
          Tensor first = Tensor::from(once[i], {int64_t(once[i].size())});
          EXPECT_LE(rel_err(first, once64[i]), 1e-5) << what << " against f64";
        }
      }
    }
  }
}

// Bad arguments are refused once, by the public entry points (tests/test_kernel_args.cpp); the
// CPU reference only refuses what it cannot compute: dtypes other than f32 and f64, also where
// the contract allows them (16-bit activations with f32 statistics and gradients, as on CUDA).
TEST(KernelsCpuContracts, CapabilityErrorsNameTheOp) {
  Tensor xb = randn({4, 8}, DType::bf16), yb = Tensor::empty({4, 8}, DType::bf16),
         g8 = randn({8}, DType::bf16), rstd = Tensor::empty({4});
  expect_error([&] { cpu::rmsnorm_forward(xb, g8, 1e-5f, yb, rstd); },
               "rmsnorm_forward: the CPU backend computes in f32 or f64, got bf16");
  expect_error([&] { kernels::rmsnorm_forward(xb, g8, 1e-5f, yb, rstd); },
               "rmsnorm_forward: the CPU backend computes in f32 or f64, got bf16");
  Tensor id = ids(3, 0, 4), doutb = randn({3, 8}, DType::bf16), dtable = Tensor::zeros({4, 8});
  expect_error([&] { kernels::embedding_backward(id, doutb, 0, dtable); },
               "embedding_backward: the CPU backend computes in f32 or f64, got bf16");
  Tensor cf = Tensor::empty({4, 5});
  expect_error(
      [&] {
        kernels::matmul(xb, false, randn({5, 8}, DType::bf16), true, cf, 1, 0, nullptr);
      },
      "matmul: the CPU backend computes in f32 or f64, got bf16");
}

// Reductions (γ, sums of squares, embedding and RMSNorm gain gradients, matmul's split blocks,
// attention) give the same bits for any number of threads: runs reproduce on any machine.
TEST(KernelsCpuContracts, ResultsDoNotDependOnTheThreadCount) {
  const int saved = omp_get_max_threads();
  Tensor w = randn({300, 101}, DType::f32), dout = randn({4000, 37}, DType::f32);
  Tensor id = ids(4000, 0, 50), x = randn({6, 70, 70}, DType::f32), g = randn({70}, DType::f32);
  const Shape qs{2, 70, 3, 70};
  Tensor q = randn(qs, DType::f32), wp = randn({150, 37}, DType::f32);
  std::vector<Vec> first;
  for (int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    Tensor t = Tensor::empty({300, 101}), gamma = Tensor::empty({1});
    cpu::ternary_quantize(w, 1e-5f, t, gamma);
    Tensor dtable = Tensor::zeros({50, 37});
    cpu::embedding_backward(id, dout, 0, dtable);
    Tensor y = Tensor::empty({6, 70, 70}), rstd = Tensor::empty({420});
    Tensor dx = Tensor::zeros({6, 70, 70}), dg = Tensor::zeros({70});
    cpu::rmsnorm_forward(x, g, 1e-5f, y, rstd);
    cpu::rmsnorm_backward(x, x, g, rstd, dx, dg);
    Tensor proj = Tensor::empty({4000, 150});  // many row blocks
    cpu::matmul(dout, false, wp, true, proj, 1.f, 0.f, nullptr);
    Tensor o = Tensor::empty(qs), lse = Tensor::empty({2, 3, 70});
    Tensor dq = Tensor::zeros(qs), dk = Tensor::zeros(qs), dv = Tensor::zeros(qs);
    cpu::attention_forward(q, q, x.view(qs), 0.3f, o, lse);
    cpu::attention_backward(q, q, q, x.view(qs), o, lse, 0.3f, dq, dk, dv);
    std::vector<Vec> got = {gamma.to_doubles(),  t.to_doubles(),
                            dtable.to_doubles(), dg.to_doubles(),
                            dx.to_doubles(),     Vec{cpu::sum_squares({w, dout, x}, nullptr)},
                            proj.to_doubles(),   o.to_doubles(),
                            dq.to_doubles(),     dk.to_doubles()};
    if (first.empty())
      first = got;
    else
      for (size_t i = 0; i < got.size(); i++)
        EXPECT_EQ(got[i], first[i]) << threads << " threads, result " << i;
  }
  omp_set_num_threads(saved);
}
