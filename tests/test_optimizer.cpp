// The optimizer step's bookkeeping on the CPU: loss-scale dynamics, clipping, skipped steps.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/lm.h"
#include "train/optimizer.h"

using namespace spectra;

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterCleanSteps) {
  LossScaler s;
  s.enabled = true;
  s.scale = 1024;
  s.growth_interval = 3;
  s.update(true);
  EXPECT_EQ(s.scale, 512);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale, 512);
  s.update(false);
  EXPECT_EQ(s.scale, 1024);
  s.update(true);
  s.update(false);  // an overflow resets the clean-step count
  s.update(false);
  EXPECT_EQ(s.scale, 512);
  LossScaler off;
  off.update(true);
  EXPECT_EQ(off.scale, 1.0);
}

namespace {
ModelConfig tiny() {
  ModelConfig c;
  c.vocab_size = c.vocab_rows = 16;
  c.hidden = 8;
  c.ffn = 8;
  c.heads = 2;
  c.layers = 1;
  c.context = 8;
  return c;
}
}  // namespace

TEST(AdamW, ClipsToTheGradientNormAndSkipsNonFiniteSteps) {
  LM lm(tiny(), {}, DType::f32);
  lm.initialize(1);
  Recipe::Optimizer o;
  o.grad_clip = 1.0;
  AdamW opt(lm, o, false);
  auto params = lm.named_parameters();
  // A gradient of norm 10 everywhere in one tensor.
  Parameter& p = *params[0].second;
  double n = double(p.grad.numel());
  p.grad.fill_(10.0 / std::sqrt(n));
  Tensor before = p.master.clone();
  StepStats st = opt.step(1e-2, 0.0);
  EXPECT_NEAR(st.grad_norm, 10.0, 1e-4);
  EXPECT_FALSE(st.skipped);
  // The first AdamW step moves each weight by about lr (sign of the gradient), whatever the clip.
  std::vector<double> a = before.to_doubles(), b = p.master.to_doubles();
  EXPECT_NEAR(a[0] - b[0], 1e-2, 1e-4);
  // Gradients were consumed.
  EXPECT_EQ(p.grad.to_doubles()[0], 0.0);
  // A non-finite gradient skips the step and leaves the weights alone.
  p.grad.fill_(NAN);
  Tensor kept = p.master.clone();
  st = opt.step(1e-2, 0.0);
  EXPECT_TRUE(st.skipped);
  EXPECT_EQ(kept.to_doubles(), p.master.to_doubles());
}
