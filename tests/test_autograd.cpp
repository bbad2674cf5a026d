// Whole-model gradients against central finite differences in f64, and the TriLM layer's
// straight-through estimator at the model level.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/ternary.h"
#include "layers/lm.h"

using namespace spectra;

namespace {

ModelConfig tiny(ModelKind kind) {
  ModelConfig c;
  c.kind = kind;
  c.vocab_size = c.vocab_rows = 11;
  c.hidden = 8;
  c.ffn = 12;
  c.heads = 2;
  c.layers = 2;
  c.context = 16;
  c.init_std = 0.3f;  // large enough that every op is far from linear
  return c;
}

struct Batch {
  Tensor ids, targets;
  int64_t b = 2, t = 5;
};

Batch make_batch(int64_t vocab) {
  Batch x;
  std::vector<int32_t> ids, tg;
  Rng rng{7, 0};
  for (int64_t i = 0; i < x.b * x.t; i++) {
    ids.push_back(int32_t(rng.below(uint64_t(vocab))));
    tg.push_back(i == 3 ? -1 : int32_t(rng.below(uint64_t(vocab))));  // one ignored target
  }
  x.ids = Tensor::from(ids, {x.b * x.t});
  x.targets = Tensor::from(tg, {x.b * x.t});
  return x;
}

double loss_of(const LM& lm, const Batch& x) {
  ag::NoGradGuard ng;
  return lm.loss(x.ids, x.targets, x.b, x.t).value().item();
}

// Compares the analytic gradient of each parameter named by `select` with central differences
// on a sample of its elements.
void check_against_fd(LM& lm, const Batch& x, const std::function<bool(const Parameter&)>& select) {
  lm.zero_grad();
  ag::backward(lm.loss(x.ids, x.targets, x.b, x.t));
  const double h = 1e-6;
  int checked = 0;
  for (auto& [name, p] : lm.named_parameters()) {
    if (!select(*p)) continue;
    double* w = p->master.data<double>();
    const double* g = p->grad.data<double>();
    int64_t n = p->master.numel();
    for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 7)) {
      double orig = w[i];
      w[i] = orig + h;
      double lp = loss_of(lm, x);
      w[i] = orig - h;
      double lm_ = loss_of(lm, x);
      w[i] = orig;
      double fd = (lp - lm_) / (2 * h);
      EXPECT_NEAR(g[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << name << "[" << i << "]";
      checked++;
    }
  }
  EXPECT_GT(checked, 20);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_doubles(), y = b.to_doubles();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); i++) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

Tensor randn(Shape shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(std::move(shape), DType::f64);
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<double>()[i] = scale * philox_normal(seed, uint64_t(i));
  return t;
}

}  // namespace

// Every differentiable op through the tape, against central differences.
TEST(Gradcheck, EachOp) {
  using V = std::vector<ag::Var>;
  struct Case {
    const char* name;
    std::function<ag::Var(const V&)> f;
    std::vector<Tensor> inputs;
  };
  Tensor ids = Tensor::from<int32_t>({3, 0, 4, 3, 1}, {5});
  Tensor targets = Tensor::from<int32_t>({2, -1, 6, 0, 1}, {5});
  std::vector<Case> cases = {
      {"linear",
       [](const V& v) { return ag::weighted_sum(ag::linear(v[0], v[1])); },
       {randn({5, 7}, 1), randn({3, 7}, 2)}},
      {"rmsnorm",
       [](const V& v) { return ag::weighted_sum(ag::rmsnorm(v[0], v[1], 1e-5f)); },
       {randn({4, 9}, 3), randn({9}, 4)}},
      {"add_rmsnorm",
       [](const V& v) {
         ag::AddNorm o = ag::add_rmsnorm(v[0], v[1], v[2], 1e-5f);
         return ag::add(ag::weighted_sum(o.sum, 1), ag::weighted_sum(o.normed, 2));
       },
       {randn({4, 9}, 23), randn({4, 9}, 24), randn({9}, 25)}},
      {"swiglu",
       [](const V& v) { return ag::weighted_sum(ag::swiglu(v[0], v[1])); },
       {randn({3, 6}, 5, 2.0), randn({3, 6}, 6)}},
      {"rope",
       [](const V& v) { return ag::weighted_sum(ag::rope(v[0], 3, 10000.f)); },
       {randn({2, 5, 3, 8}, 7)}},
      {"attention",
       [](const V& v) { return ag::weighted_sum(ag::attention(v[0], v[1], v[2])); },
       {randn({2, 5, 2, 4}, 8), randn({2, 5, 2, 4}, 9), randn({2, 5, 2, 4}, 10)}},
      {"embedding",
       [ids](const V& v) { return ag::weighted_sum(ag::embedding(ids, v[0])); },
       {randn({6, 4}, 11)}},
      {"add",
       [](const V& v) { return ag::weighted_sum(ag::add(v[0], v[1])); },
       {randn({3, 4}, 12), randn({3, 4}, 13)}},
      {"cross_entropy",
       [targets](const V& v) { return ag::cross_entropy(v[0], targets); },
       {randn({5, 7}, 14, 3.0)}},
      // The fused head and loss, in chunks of 2 rows (the last one short).
      {"linear_cross_entropy",
       [targets](const V& v) { return ag::linear_cross_entropy(v[0], v[1], targets, 2); },
       {randn({5, 6}, 21), randn({7, 6}, 22, 2.0)}},
      // The ternary layer is linear in x: dx is exact (dw is straight-through: tested below).
      {"ternary_linear dx",
       [w = randn({5, 8}, 16, 0.02)](const V& v) {
         return ag::weighted_sum(ag::ternary_linear(v[0], ag::Var(w), 1e-5f));
       },
       {randn({4, 8}, 15)}},
      // Per-block scales (the single-process form of tp=2): row blocks and column blocks.
      {"ternary_linear dx, 2 row-block scales",
       [w = randn({6, 8}, 17, 0.02)](const V& v) {
         return ag::weighted_sum(ag::ternary_linear(v[0], ag::Var(w), 1e-5f, {2, 0}));
       },
       {randn({4, 8}, 18)}},
      {"ternary_linear dx, 2 column-block scales",
       [w = randn({6, 8}, 19, 0.02)](const V& v) {
         return ag::weighted_sum(ag::ternary_linear(v[0], ag::Var(w), 1e-5f, {2, 1}));
       },
       {randn({4, 8}, 20)}},
  };
  for (const Case& c : cases) {
    ag::GradCheck r = ag::gradcheck(c.f, c.inputs);
    EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  }
}

// The fused head and loss equals the LM head followed by cross_entropy, whatever the chunking:
// the same loss and per-token losses, and gradients up to the order of dw's sum over chunks.
TEST(Autograd, ChunkedHeadLossEqualsUnchunked) {
  auto f32 = [](const Tensor& t) { return t.to(DType::f32); };
  const Tensor x0 = f32(randn({37, 16}, 30)), w0 = f32(randn({50, 16}, 31, 0.5));
  std::vector<int32_t> t(37);
  for (size_t i = 0; i < t.size(); i++) t[i] = i % 5 == 3 ? -1 : int32_t((i * 7) % 50);
  const Tensor targets = Tensor::from<int32_t>(t, {37});
  ag::Var x(x0.clone(), true), w(w0.clone(), true);
  Tensor ref_tokens;
  ag::Var ref = ag::cross_entropy(ag::linear(x, w), targets, &ref_tokens);
  ag::backward(ref);
  for (int64_t chunk : {1, 3, 16, 37, 64}) {
    SCOPED_TRACE("chunk rows " + std::to_string(chunk));
    ag::Var xc(x0.clone(), true), wc(w0.clone(), true);
    Tensor tokens;
    ag::Var loss = ag::linear_cross_entropy(xc, wc, targets, chunk, &tokens);
    EXPECT_NEAR(loss.value().item(), ref.value().item(), 1e-6);
    EXPECT_LT(max_abs_diff(tokens, ref_tokens), 1e-5);
    ag::backward(loss);
    EXPECT_LT(max_abs_diff(xc.grad(), x.grad()), 1e-6);
    EXPECT_LT(max_abs_diff(wc.grad(), w.grad()), 1e-6);
  }
  EXPECT_EQ(ag::head_chunk_rows(50304), 1280);  // 2^26 logits, a multiple of 64 rows
  EXPECT_EQ(ag::head_chunk_rows(int64_t(1) << 30), 1);
}

// Quantizing once per optimizer step (a 16-bit model's compute copy) computes what quantizing in
// every forward pass does, bit for bit: the same outputs, dx and straight-through dw.
TEST(Autograd, QuantizedLinearEqualsTernaryLinear) {
  auto f32 = [](const Tensor& t) { return t.to(DType::f32); };
  for (ag::TernaryScales s : {ag::TernaryScales{1, 0}, {2, 0}, {2, 1}}) {
    SCOPED_TRACE(std::to_string(s.groups) + " scales along axis " + std::to_string(s.axis));
    const Tensor x0 = f32(randn({6, 8}, 40)), w0 = f32(randn({4, 8}, 41, 0.05));
    ag::Var x(x0.clone(), true), w(w0.clone(), true);
    ag::Var y = ag::ternary_linear(x, w, 1e-5f, s);
    ag::backward(ag::weighted_sum(y));

    Tensor weight = Tensor::empty(w0.shape(), DType::f32), gamma = Tensor::empty({s.groups});
    if (s.groups == 1)
      kernels::ternary_quantize(w0, 1e-5f, weight, gamma);
    else
      kernels::ternary_quantize_groups(w0, 1e-5f, s.groups, s.axis, weight, gamma);
    ag::Var xq(x0.clone(), true);
    ag::Var wq = ag::Var::with_grad(weight, Tensor::zeros(w0.shape()));
    ag::Var yq = ag::quantized_linear(xq, wq, gamma);
    ag::backward(ag::weighted_sum(yq));
    EXPECT_EQ(max_abs_diff(yq.value(), y.value()), 0.0);
    EXPECT_EQ(max_abs_diff(xq.grad(), x.grad()), 0.0);
    EXPECT_EQ(max_abs_diff(wq.grad(), w.grad()), 0.0);
  }
}

TEST(Gradcheck, CatchesAWrongGradient) {
  // A deliberately wrong backward (x² reported as 3x) must fail the checker.
  auto wrong = [](const std::vector<ag::Var>& v) {
    ag::Var y(Tensor::full({1}, v[0].value().data<double>()[0] * v[0].value().data<double>()[0],
                           DType::f64),
              true);
    ag::record([x = v[0], y] {
      x.grad().data<double>()[0] += 3 * x.value().data<double>()[0] * y.grad().item();
    });
    return y;
  };
  EXPECT_FALSE(ag::gradcheck(wrong, {Tensor::full({1}, 0.7, DType::f64)}).ok);
}

TEST(Autograd, FloatLMGradientsMatchFiniteDifferences) {
  LM lm(tiny(ModelKind::floatlm), {DType::f64, Device::cpu()}, DType::f64);
  lm.initialize(3);
  check_against_fd(lm, make_batch(11), [](const Parameter&) { return true; });
}

TEST(Autograd, TriLMFloatParametersMatchFiniteDifferences) {
  // Embedding, norms and head are floating point in a TriLM: their gradients are exact.
  LM lm(tiny(ModelKind::trilm), {DType::f64, Device::cpu()}, DType::f64);
  lm.initialize(3);
  check_against_fd(lm, make_batch(11), [](const Parameter& p) { return !p.ternary; });
}

TEST(Autograd, TriLMStraightThroughEqualsFloatGradientAtEffectiveWeights) {
  // STE: each latent W receives dL/d(γ·T), the gradient of a FloatLM whose projections are the
  // TriLM's effective weights γ·T, which is itself checked against finite differences above.
  LM tri(tiny(ModelKind::trilm), {DType::f64, Device::cpu()}, DType::f64);
  LM flt(tiny(ModelKind::floatlm), {DType::f64, Device::cpu()}, DType::f64);
  tri.initialize(5);
  auto tp = tri.named_parameters(), fp = flt.named_parameters();
  ASSERT_EQ(tp.size(), fp.size());
  for (size_t i = 0; i < tp.size(); i++) {
    Parameter& t = *tp[i].second;
    Tensor w = t.master;
    if (t.ternary) {
      Tensor trits = Tensor::empty(w.shape(), DType::f64), gamma = Tensor::empty({1});
      kernels::ternary_quantize(w, 1e-5f, trits, gamma);
      w = trits.clone();
      kernels::scale(w, float(gamma.item()));
    }
    fp[i].second->master.copy_from(w);
  }
  Batch x = make_batch(11);
  tri.zero_grad();
  flt.zero_grad();
  ag::backward(tri.loss(x.ids, x.targets, x.b, x.t));
  ag::backward(flt.loss(x.ids, x.targets, x.b, x.t));
  for (size_t i = 0; i < tp.size(); i++) {
    std::vector<double> a = tp[i].second->grad.to_doubles(), b = fp[i].second->grad.to_doubles();
    for (size_t j = 0; j < a.size(); j++)
      ASSERT_NEAR(a[j], b[j], 1e-5 * (1e-3 + std::abs(b[j]))) << tp[i].first;
  }
}

TEST(Autograd, TernaryForwardUsesOnlyThreeValues) {
  Tensor w = Tensor::empty({6, 10});
  for (int64_t i = 0; i < w.numel(); i++)
    w.data<float>()[i] = philox_normal(9, uint64_t(i)) * 0.02f;
  double mean_abs = 0;
  for (double v : w.to_doubles()) mean_abs += std::abs(v);
  mean_abs /= double(w.numel());
  // x = identity, so y = (γ·T)ᵀ exposes every effective weight.
  Tensor eye = Tensor::zeros({10, 10});
  for (int i = 0; i < 10; i++) eye.data<float>()[i * 10 + i] = 1.f;
  Tensor gamma;
  ag::Var y = ag::ternary_linear(ag::Var(eye), ag::Var(w), 1e-5f, {}, &gamma);
  EXPECT_FLOAT_EQ(float(gamma.item()), float(1e-5 + mean_abs));
  float g = float(gamma.item());
  int nonzero = 0;
  for (double v : y.value().to_doubles()) {
    EXPECT_TRUE(v == 0.0 || float(v) == g || float(v) == -g) << v;
    nonzero += v != 0.0;
  }
  EXPECT_GT(nonzero, 10);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  LM lm(tiny(ModelKind::floatlm), {DType::f64, Device::cpu()}, DType::f64);
  lm.initialize(1);
  Batch x = make_batch(11);
  lm.zero_grad();
  ag::backward(lm.loss(x.ids, x.targets, x.b, x.t));
  std::vector<double> once = lm.named_parameters()[0].second->grad.to_doubles();
  ag::backward(lm.loss(x.ids, x.targets, x.b, x.t));
  std::vector<double> twice = lm.named_parameters()[0].second->grad.to_doubles();
  for (size_t i = 0; i < once.size(); i++) EXPECT_NEAR(twice[i], 2 * once[i], 1e-12);
  EXPECT_EQ(ag::tape_size(), 0u);
}

// Activation recomputation changes what is kept, not what is computed: the loss and every
// parameter's gradient equal the recorded forward's bit for bit, with a far shorter tape.
TEST(Autograd, RecomputedBlocksGiveTheSameGradients) {
  for (ModelKind kind : {ModelKind::floatlm, ModelKind::trilm}) {
    Batch x = make_batch(11);
    std::vector<std::vector<double>> grads[2];
    double losses[2];
    size_t tape[2];
    for (int recompute : {0, 1}) {
      ModelConfig c = tiny(kind);
      c.layers = 3;
      LM lm(c, {DType::f32, Device::cpu()}, DType::f32);
      lm.initialize(3);
      lm.set_recompute(recompute);
      lm.zero_grad();
      ag::Var loss = lm.loss(x.ids, x.targets, x.b, x.t);
      tape[recompute] = ag::tape_size();
      losses[recompute] = loss.value().to_doubles()[0];
      ag::backward(loss);
      for (auto& [name, p] : lm.named_parameters())
        grads[recompute].push_back(p->grad.to_doubles());
      EXPECT_EQ(ag::tape_size(), 0u);
    }
    EXPECT_EQ(losses[0], losses[1]);
    EXPECT_EQ(grads[0], grads[1]);
    EXPECT_LT(tape[1], tape[0] / 2);  // one entry per block instead of each block's ops
  }
}

TEST(Autograd, ParameterNamesFollowHuggingFace) {
  LM lm(tiny(ModelKind::trilm), {}, DType::f32);
  auto params = lm.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, p] : params) names.push_back(n);
  EXPECT_EQ(names.front(), "model.embed_tokens.weight");
  EXPECT_EQ(names[1], "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(names[2], "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(names.back(), "lm_head.weight");
  int64_t total = 0;
  for (auto& [n, p] : params) total += p->master.numel();
  EXPECT_EQ(total, tiny(ModelKind::trilm).parameter_count());
}
