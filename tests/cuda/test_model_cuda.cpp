// The whole model on the GPU against the CPU reference: loss and every parameter's gradient
// (f32: relative error <= 1e-4 after dozens of chained ops; bf16: <= 2e-2), and one optimizer
// step's parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "layers/lm.h"
#include "train/graphed_step.h"
#include "train/optimizer.h"

using namespace spectra;

namespace {

ModelConfig config(ModelKind kind, int64_t head_dim) {
  ModelConfig c;
  c.kind = kind;
  c.vocab_size = 1000;
  c.vocab_rows = 1024;
  c.heads = 3;
  c.hidden = 3 * head_dim;
  c.ffn = 200;
  c.layers = 2;
  c.context = 128;
  return c;
}

double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

void compare(ModelKind kind, int64_t head_dim, DType compute, double tol, int64_t shards = 1,
             kernels::AttentionImpl impl = kernels::AttentionImpl::reference) {
  ModelConfig c = config(kind, head_dim);
  c.ternary_shards = shards;
  c.attention = impl;
  const int64_t b = 2, t = 100;  // not a multiple of any tile size
  LM cpu(c, {DType::f32, Device::cpu()}, DType::f32);
  LM gpu(c, {DType::f32, Device::cuda()}, compute);
  cpu.initialize(11);
  gpu.initialize(11);
  std::vector<int32_t> ids(b * t), tg(b * t);
  Rng rng{3, 0};
  for (size_t i = 0; i < ids.size(); i++) {
    ids[i] = int32_t(rng.below(uint64_t(c.vocab_size)));
    tg[i] = i % 17 == 0 ? -1 : int32_t(rng.below(uint64_t(c.vocab_size)));
  }
  Tensor x = Tensor::from(ids, {b * t}), y = Tensor::from(tg, {b * t});
  // One graph at a time: the tape is shared, so each backward follows its own forward.
  ag::Var lc = cpu.loss(x, y, b, t);
  ag::backward(lc);
  ag::Var lg = gpu.loss(x.to(Device::cuda()), y.to(Device::cuda()), b, t);
  ag::backward(lg);
  EXPECT_NEAR(lg.value().item(), lc.value().item(), tol * lc.value().item());
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); i++)
    EXPECT_LE(rel_err(pg[i].second->grad.to_doubles(), pc[i].second->grad.to_doubles()), tol)
        << pc[i].first;
  Recipe::Optimizer o;
  Optimizer oc(cpu, o, false), og(gpu, o, compute == DType::f16);
  oc.step(1e-3, 0.1);
  og.step(1e-3, 0.1);
  // AdamW's first step is sign-like (±lr wherever the gradient is nonzero), so 16-bit gradient
  // noise on near-zero gradients flips whole updates: compare the masters loosely there.
  const double step_tol = compute == DType::f32 ? tol : 0.1;
  for (size_t i = 0; i < pc.size(); i++)
    EXPECT_LE(rel_err(pg[i].second->master.to_doubles(), pc[i].second->master.to_doubles()),
              step_tol)
        << pc[i].first;
}

}  // namespace

class ModelCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "no GPU: the model-level CUDA comparison is skipped";
  }
};

TEST_F(ModelCuda, FloatLMF32MatchesCpu) { compare(ModelKind::floatlm, 64, DType::f32, 1e-4); }
TEST_F(ModelCuda, TriLMF32MatchesCpu) { compare(ModelKind::trilm, 64, DType::f32, 1e-4); }
TEST_F(ModelCuda, TriLMHeadDim128F32MatchesCpu) {
  compare(ModelKind::trilm, 128, DType::f32, 1e-4);
}
// Two scales per projection (what one process computes for a tp=2 TriLM): per-block γ·T.
TEST_F(ModelCuda, TriLMTwoScalesF32MatchesCpu) {
  compare(ModelKind::trilm, 64, DType::f32, 1e-4, 2);
}
TEST_F(ModelCuda, FloatLMBf16MatchesCpu) { compare(ModelKind::floatlm, 64, DType::bf16, 3e-2); }
TEST_F(ModelCuda, TriLMBf16MatchesCpu) { compare(ModelKind::trilm, 64, DType::bf16, 3e-2); }
// The tensor-core attention paths inside the whole model (the CPU runs its reference).
TEST_F(ModelCuda, TriLMBf16FlashAttentionMatchesCpu) {
  compare(ModelKind::trilm, 64, DType::bf16, 3e-2, 1, kernels::AttentionImpl::flash);
}
TEST_F(ModelCuda, FloatLMBf16HeadDim128FlashAttentionMatchesCpu) {
  compare(ModelKind::floatlm, 128, DType::bf16, 3e-2, 1, kernels::AttentionImpl::flash);
}
TEST_F(ModelCuda, TriLMBf16CudnnAttentionMatchesCpu) {
  compare(ModelKind::trilm, 64, DType::bf16, 3e-2, 1, kernels::AttentionImpl::cudnn);
}
TEST_F(ModelCuda, TriLMF16MatchesCpu) { compare(ModelKind::trilm, 64, DType::f16, 3e-2); }

// fp16 with dynamic loss scaling: the scaled backward stays finite, the step unscales exactly,
// and an overflowing step is skipped with the scale halved.
TEST_F(ModelCuda, F16LossScalingTrains) {
  ModelConfig c = config(ModelKind::trilm, 64);
  LM lm(c, {DType::f32, Device::cuda()}, DType::f16);
  lm.initialize(2);
  Recipe::Optimizer o;
  Optimizer opt(lm, o, /*fp16_loss_scaling=*/true);
  ASSERT_EQ(opt.scaler().scale, 65536.0);
  std::vector<int32_t> ids(2 * 64);
  for (size_t i = 0; i < ids.size(); i++) ids[i] = int32_t(i * 7 % 1000);
  Tensor x = Tensor::from(ids, {128}).to(Device::cuda());
  double first = 0, last = 0;
  for (int step = 0; step < 20; step++) {
    ag::Var loss = lm.loss(x, x, 2, 64);
    (step == 0 ? first : last) = loss.value().item();
    ag::backward(loss, opt.scaler().scale);
    StepStats st = opt.step(3e-3, 0.0);
    EXPECT_FALSE(st.skipped) << step;
    EXPECT_TRUE(std::isfinite(st.grad_norm));
  }
  EXPECT_LT(last, first - 0.5);
  // Force an overflow: an absurd scale makes fp16 gradients infinite.
  ag::Var loss = lm.loss(x, x, 2, 64);
  ag::backward(loss, 1e30);
  StepStats st = opt.step(3e-3, 0.0);
  EXPECT_TRUE(st.skipped);
  EXPECT_EQ(opt.scaler().scale, 32768.0);
}

// train.cuda_graph: five steps of two micro-batches each, replayed from a graph (after an eager
// first micro-batch), give the eager run's losses and weights bit for bit with the deterministic
// attention paths; cuDNN's backward adds dQ with atomics, so it is compared within 1e-3.
TEST_F(ModelCuda, GraphedMicroBatchesEqualTheEagerStep) {
  for (kernels::AttentionImpl impl :
       {kernels::AttentionImpl::reference, kernels::AttentionImpl::flash,
        kernels::AttentionImpl::cudnn}) {
    SCOPED_TRACE(kernels::attention_impl_name(impl));
    const bool exact = impl != kernels::AttentionImpl::cudnn;
    ModelConfig c = config(ModelKind::trilm, 64);
    c.attention = impl;
    std::vector<double> losses[2];
    Tensor weights[2];
    for (int graphed = 0; graphed < 2; graphed++) {
      LM lm(c, {DType::f32, Device::cuda()}, DType::bf16);
      lm.initialize(5);
      Recipe::Optimizer o;
      Optimizer opt(lm, o, false);
      GraphedMicroBatch g(lm, 0.5);
      for (int step = 0; step < 5; step++) {
        double loss = 0;
        for (int micro = 0; micro < 2; micro++) {
          std::vector<int32_t> ids(2 * 96);
          for (size_t i = 0; i < ids.size(); i++)
            ids[i] = int32_t((i * 13 + step * 7 + micro) % 1000);
          TokenBatch b{Tensor::from(ids, {192}), Tensor::from(ids, {192}), 2, 96};
          if (graphed) {
            loss += 0.5 * g.run(b).item();
          } else {
            ag::Var l = lm.loss(b.ids.to(Device::cuda()), b.targets.to(Device::cuda()), 2, 96);
            loss += 0.5 * l.value().item();
            ag::backward(l, 0.5);
          }
        }
        opt.step(1e-3, 0.1);
        losses[graphed].push_back(loss);
      }
      weights[graphed] = lm.master_arena().to(Device::cpu());
    }
    if (exact) {
      EXPECT_EQ(losses[0], losses[1]);
      EXPECT_EQ(weights[0].to_doubles(), weights[1].to_doubles());
    } else {
      for (size_t i = 0; i < losses[0].size(); i++)
        EXPECT_NEAR(losses[1][i], losses[0][i], 1e-3 * losses[0][i]) << "step " << i;
    }
  }
}
