// The whole model on the GPU against the CPU reference: loss and every parameter's gradient
// (f32: relative error <= 1e-4 after dozens of chained ops; bf16: <= 2e-2), and one optimizer
// step's parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "layers/lm.h"
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

void compare(ModelKind kind, int64_t head_dim, DType compute, double tol) {
  ModelConfig c = config(kind, head_dim);
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
  AdamW oc(cpu, o, false), og(gpu, o, compute == DType::f16);
  oc.step(1e-3, 0.1);
  og.step(1e-3, 0.1);
  for (size_t i = 0; i < pc.size(); i++)
    EXPECT_LE(rel_err(pg[i].second->master.to_doubles(), pc[i].second->master.to_doubles()), tol)
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
TEST_F(ModelCuda, TriLMHeadDim128F32MatchesCpu) { compare(ModelKind::trilm, 128, DType::f32, 1e-4); }
TEST_F(ModelCuda, FloatLMBf16MatchesCpu) { compare(ModelKind::floatlm, 64, DType::bf16, 3e-2); }
TEST_F(ModelCuda, TriLMBf16MatchesCpu) { compare(ModelKind::trilm, 64, DType::bf16, 3e-2); }
