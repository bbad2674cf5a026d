// model.attention: flash (kernels/cuda/flash_*.cu) against the CPU reference: forward
// (o, lse) and backward (dq, dk, dv) on fresh random bf16/f16 inputs, the CPU running in f32 on
// the same rounded values, at lengths that are and are not multiples of the tiles. Errors are
// the largest absolute difference over the largest |reference| value, printed per case. Also:
// flash and reference forward/backward mix (lse is natural-log in both), gradients accumulate,
// the backward is bitwise deterministic, and unsupported inputs are refused with a message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "tests/cuda/attention_problem.h"

using namespace spectra;
using namespace spectra::attention_test;

namespace {

class FlashAttentionCuda : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP()
          << "no GPU: flash attention checks skipped (run scripts/gpu-check on a GPU host)";
  }
};

std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

}  // namespace

TEST_P(FlashAttentionCuda, MatchesCpuReference) {
  for (int64_t d : {64, 128})
    for (int64_t t : {1, 7, 63, 64, 65, 127, 129, 300, 1000, 2048}) {
      const bool big = t >= 1000;
      const Problem p(big ? 1 : 2, t, big ? 2 : 3, d, GetParam(), false);
      Tensor og, lg, dqg, dkg, dvg;
      p.forward(AttentionImpl::flash, og, lg);
      p.expect_forward("flash", og, lg);
      p.backward(AttentionImpl::flash, og, lg, dqg, dkg, dvg);
      p.expect_grads("flash", dqg, dkg, dvg);
    }
}

// Every implementation stores lse in natural log: one's forward feeds another's backward.
TEST_P(FlashAttentionCuda, MixesWithReference) {
  for (int64_t d : {64, 128})
    for (int64_t t : {65, 300}) {
      const Problem p(2, t, 3, d, GetParam(), false);
      Tensor of, lf, orf, lr, dqg, dkg, dvg;
      p.forward(AttentionImpl::flash, of, lf);
      p.forward(AttentionImpl::reference, orf, lr);
      const double lse_gap = max_rel(lf, lr, 1.0);
      std::printf("  %-32s flash vs reference lse %.2e\n", p.name().c_str(), lse_gap);
      EXPECT_LE(lse_gap, kLseTol) << p.name();
      p.backward(AttentionImpl::reference, of, lf, dqg, dkg, dvg);
      p.expect_grads("flash fwd + ref bwd", dqg, dkg, dvg);
      p.backward(AttentionImpl::flash, orf, lr, dqg, dkg, dvg);
      p.expect_grads("ref fwd + flash bwd", dqg, dkg, dvg);
    }
}

// dq, dk, dv are accumulated into: start them from random values on both sides.
TEST_P(FlashAttentionCuda, BackwardAccumulates) {
  for (int64_t d : {64, 128})
    for (int64_t t : {7, 129}) {
      const Problem p(2, t, 3, d, GetParam(), true);
      Tensor og, lg, dqg, dkg, dvg;
      p.forward(AttentionImpl::flash, og, lg);
      p.backward(AttentionImpl::flash, og, lg, dqg, dkg, dvg);
      p.expect_grads("flash, prefilled grads", dqg, dkg, dvg);
    }
}

// No atomics and a fixed summation order: the same call twice gives the same bits.
TEST_P(FlashAttentionCuda, Deterministic) {
  for (int64_t d : {64, 128}) {
    const Problem p(2, 300, 3, d, GetParam(), true);
    Tensor og, lg, og2, lg2, dq1, dk1, dv1, dq2, dk2, dv2;
    p.forward(AttentionImpl::flash, og, lg);
    p.forward(AttentionImpl::flash, og2, lg2);
    EXPECT_EQ(og.to_doubles(), og2.to_doubles()) << p.name();
    EXPECT_EQ(lg.to_doubles(), lg2.to_doubles()) << p.name();
    p.backward(AttentionImpl::flash, og, lg, dq1, dk1, dv1);
    p.backward(AttentionImpl::flash, og, lg, dq2, dk2, dv2);
    EXPECT_EQ(dq1.to_doubles(), dq2.to_doubles()) << p.name();
    EXPECT_EQ(dk1.to_doubles(), dk2.to_doubles()) << p.name();
    EXPECT_EQ(dv1.to_doubles(), dv2.to_doubles()) << p.name();
  }
}

// f32 inputs and other head dims are refused with a message that points at the reference.
TEST_P(FlashAttentionCuda, RefusesUnsupportedInputs) {
  for (auto [dt, d, want] : {std::tuple{DType::f32, int64_t(64), "use model.attention: reference"},
                             {GetParam(), int64_t(32), "head_dim 64 or 128"}}) {
    Tensor q = Tensor::zeros({1, 4, 1, d}, dt, Device::cuda()), o = q.clone();
    Tensor lse = Tensor::zeros({1, 1, 4}, DType::f32, Device::cuda());
    try {
      kernels::attention_forward(q, q, q, 0.1f, o, lse, AttentionImpl::flash);
      ADD_FAILURE() << "no error for " << dtype_name(dt) << " head_dim " << d;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("attention_forward"), std::string::npos) << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FlashAttentionCuda, ::testing::Values(DType::bf16, DType::f16),
                         dtype_param_name);
