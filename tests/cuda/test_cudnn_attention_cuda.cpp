// model.attention: cudnn (kernels/cuda/cudnn_attention.cpp) against the CPU reference: forward
// (o, lse) and backward (dq, dk, dv) on fresh random bf16 (and some f16) inputs, the CPU running
// in f32 on the same rounded values. Errors are the largest absolute difference over the largest
// |reference| value, printed per case. Also: cudnn and reference forward/backward mix (lse is
// natural-log in both), gradients accumulate, the graph cache builds one graph per shape, the
// cuDNN version found and cudnnCreate on the device, and the clean refusals (f32 inputs; no GPU).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/cuda/cudnn_graph_key.h"
#include "tests/cuda/attention_problem.h"

using namespace spectra;
using namespace spectra::attention_test;
namespace gpu = spectra::kernels::cuda;

namespace {

class CudnnAttentionCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP() << "no GPU: cuDNN attention checks skipped (run scripts/gpu-check on a GPU "
                      "host; NoGpuRefusesCleanly covers this machine)";
    if (!gpu::cudnn_attention_built())
      GTEST_SKIP() << "this build has no cudnn-frontend headers (scripts/setup, then rebuild)";
    try {
      gpu::cudnn_runtime_version();  // loads libcudnn and creates the handle: fail loudly here
    } catch (const UserError& e) {
      FAIL() << e.what();
    }
  }
};

}  // namespace

// The version found and cudnnCreate on this device (cudnn_runtime_version creates the handle).
TEST_F(CudnnAttentionCuda, ReportsVersionAndCreatesHandle) {
  const size_t v = gpu::cudnn_runtime_version();
  std::printf("  cuDNN %zu.%zu.%zu on %s\n", v / 10000, v / 100 % 100, v % 100,
              cuda::device_name(cuda::current_device()).c_str());
  EXPECT_GE(v, 90000u);
  EXPECT_EQ(gpu::cudnn_runtime_version(), v);  // loaded once, the same handle
}

TEST_F(CudnnAttentionCuda, MatchesCpuReference) {
  for (int64_t d : {64, 128})
    for (int64_t t : {1, 7, 64, 65, 129, 300, 1000, 2048}) {
      const Problem p(2, t, 3, d, DType::bf16, false);
      Tensor og, lg, dqg, dkg, dvg;
      p.forward(AttentionImpl::cudnn, og, lg);
      p.expect_forward("cudnn", og, lg);
      p.backward(AttentionImpl::cudnn, og, lg, dqg, dkg, dvg);
      p.expect_grads("cudnn", dqg, dkg, dvg);
    }
  for (int64_t t : {65, 300}) {  // f16 too
    const Problem p(2, t, 3, 64, DType::f16, false);
    Tensor og, lg, dqg, dkg, dvg;
    p.forward(AttentionImpl::cudnn, og, lg);
    p.expect_forward("cudnn", og, lg);
    p.backward(AttentionImpl::cudnn, og, lg, dqg, dkg, dvg);
    p.expect_grads("cudnn", dqg, dkg, dvg);
  }
}

// Every implementation stores lse in natural log: one's forward feeds another's backward.
TEST_F(CudnnAttentionCuda, MixesWithReference) {
  for (int64_t d : {64, 128})
    for (int64_t t : {65, 300}) {
      const Problem p(2, t, 3, d, DType::bf16, false);
      Tensor oc, lc, orf, lr, dqg, dkg, dvg;
      p.forward(AttentionImpl::cudnn, oc, lc);
      p.forward(AttentionImpl::reference, orf, lr);
      const double lse_gap = max_rel(lc, lr, 1.0);
      std::printf("  %-32s cudnn vs reference lse %.2e\n", p.name().c_str(), lse_gap);
      EXPECT_LE(lse_gap, kLseTol) << p.name();
      p.backward(AttentionImpl::reference, oc, lc, dqg, dkg, dvg);
      p.expect_grads("cudnn fwd + ref bwd", dqg, dkg, dvg);
      p.backward(AttentionImpl::cudnn, orf, lr, dqg, dkg, dvg);
      p.expect_grads("ref fwd + cudnn bwd", dqg, dkg, dvg);
    }
}

// dq, dk, dv are accumulated into (cuDNN overwrites; spectra adds): start them from random values.
TEST_F(CudnnAttentionCuda, BackwardAccumulates) {
  for (int64_t d : {64, 128})
    for (int64_t t : {7, 129}) {
      const Problem p(2, t, 3, d, DType::bf16, true);
      Tensor og, lg, dqg, dkg, dvg;
      p.forward(AttentionImpl::cudnn, og, lg);
      p.backward(AttentionImpl::cudnn, og, lg, dqg, dkg, dvg);
      p.expect_grads("cudnn, prefilled grads", dqg, dkg, dvg);
      // Twice from the same start: the second call adds its gradients once more.
      Tensor dq2 = dqg.clone(), dk2 = dkg.clone(), dv2 = dvg.clone();
      kernels::attention_backward(dev(p.dout, p.dt), dev(p.q, p.dt), dev(p.k, p.dt), dev(p.v, p.dt),
                                  og, lg, p.scale, dq2, dk2, dv2, AttentionImpl::cudnn);
      Tensor twice = p.dq.clone();  // dq0 + 2·(dq − dq0) on the host
      std::vector<double> a = p.dq.to_doubles(), z = p.dq0.to_doubles();
      for (int64_t i = 0; i < twice.numel(); i++)
        twice.data<float>()[i] = float(2 * a[size_t(i)] - z[size_t(i)]);
      EXPECT_LE(max_rel(dq2, twice), 2 * kTol) << p.name();
    }
}

// The forward is bitwise deterministic. cuDNN's default backward accumulates dQ with atomics (its
// deterministic mode costs a [B, H, T, T] workspace on Hopper), so for the backward this reports
// whether two runs agree bit for bit and checks both against the reference.
TEST_F(CudnnAttentionCuda, Determinism) {
  for (int64_t d : {64, 128}) {
    const Problem p(2, 300, 3, d, DType::bf16, true);
    Tensor og, lg, og2, lg2, dq1, dk1, dv1, dq2, dk2, dv2;
    p.forward(AttentionImpl::cudnn, og, lg);
    p.forward(AttentionImpl::cudnn, og2, lg2);
    EXPECT_EQ(og.to_doubles(), og2.to_doubles()) << p.name();
    EXPECT_EQ(lg.to_doubles(), lg2.to_doubles()) << p.name();
    p.backward(AttentionImpl::cudnn, og, lg, dq1, dk1, dv1);
    p.backward(AttentionImpl::cudnn, og, lg, dq2, dk2, dv2);
    const bool same = dq1.to_doubles() == dq2.to_doubles() &&
                      dk1.to_doubles() == dk2.to_doubles() && dv1.to_doubles() == dv2.to_doubles();
    std::printf("  %-32s backward bitwise identical over two runs: %s\n", p.name().c_str(),
                same ? "yes" : "no (atomic dQ accumulation)");
    p.expect_grads("cudnn, run 2", dq2, dk2, dv2);
  }
}

// One graph per (shape, dtype, direction): a repeated shape builds nothing.
TEST_F(CudnnAttentionCuda, CacheReusesGraphs) {
  const Problem p(2, 77, 3, 64, DType::bf16, false);
  Tensor og, lg, dqg, dkg, dvg;
  const size_t before = gpu::cudnn_attention_graphs();
  p.forward(AttentionImpl::cudnn, og, lg);
  p.backward(AttentionImpl::cudnn, og, lg, dqg, dkg, dvg);
  const size_t after_first = gpu::cudnn_attention_graphs();
  EXPECT_EQ(after_first, before + 2);  // T = 77 is used by no other test
  for (int i = 0; i < 3; i++) {
    p.forward(AttentionImpl::cudnn, og, lg);
    p.backward(AttentionImpl::cudnn, og, lg, dqg, dkg, dvg);
  }
  EXPECT_EQ(gpu::cudnn_attention_graphs(), after_first);
  p.expect_grads("cudnn, cached graphs", dqg, dkg, dvg);
  const Problem other(2, 78, 3, 64, DType::bf16, false);  // a new length: one new forward graph
  other.forward(AttentionImpl::cudnn, og, lg);
  EXPECT_EQ(gpu::cudnn_attention_graphs(), after_first + 1);
}

// Tq < Tk (generation with a cache): the queries are the last Tq positions (bottom-right
// causal diagonal). Older cuDNN versions may not offer it: then a UserError says so.
TEST_F(CudnnAttentionCuda, ShorterQueriesAlignBottomRight) {
  Tensor q = randn({1, 5, 2, 64}, DType::bf16), k = randn({1, 70, 2, 64}, DType::bf16),
         v = randn({1, 70, 2, 64}, DType::bf16);
  Tensor o = Tensor::empty({1, 5, 2, 64}), lse = Tensor::empty({1, 2, 5});
  cpu::attention_forward(q, k, v, 0.125f, o, lse);
  Tensor og = poisoned({1, 5, 2, 64}, DType::bf16), lg = poisoned({1, 2, 5}, DType::f32);
  try {
    kernels::attention_forward(dev(q, DType::bf16), dev(k, DType::bf16), dev(v, DType::bf16),
                               0.125f, og, lg, AttentionImpl::cudnn);
  } catch (const UserError& e) {
    GTEST_SKIP() << "this cuDNN refuses Tq < Tk: " << e.what();
  }
  std::printf("  Tq 5 < Tk 70: o %.2e  lse %.2e\n", max_rel(og, o), max_rel(lg, lse, 1.0));
  EXPECT_LE(max_rel(og, o), kTol);
  EXPECT_LE(max_rel(lg, lse, 1.0), kLseTol);
}

TEST_F(CudnnAttentionCuda, RefusesF32) {
  Tensor q = Tensor::zeros({1, 4, 1, 64}, DType::f32, Device::cuda()), o = q.clone();
  Tensor lse = Tensor::zeros({1, 1, 4}, DType::f32, Device::cuda());
  try {
    kernels::attention_forward(q, q, q, 0.1f, o, lse, AttentionImpl::cudnn);
    ADD_FAILURE() << "no error for f32";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 or f16"), std::string::npos) << e.what();
  }
}

// Where there is no GPU (this test's only case) cuDNN still loads dynamically when present, and
// the first use ends in one UserError that names what failed and the way out; never a crash.
TEST(CudnnAttentionNoGpu, NoGpuRefusesCleanly) {
  if (cuda::available()) GTEST_SKIP() << "a GPU is present: the CudnnAttentionCuda tests run";
  try {
    gpu::cudnn_runtime_version();
    ADD_FAILURE() << "cuDNN handle created without a GPU";
  } catch (const UserError& e) {
    const std::string m = e.what();
    std::printf("  %s\n", m.c_str());
    if (gpu::cudnn_attention_built()) {
      EXPECT_NE(m.find("use model.attention: reference or flash"), std::string::npos) << m;
      // Where libcudnn loaded, the frontend is pointed at the CUDA runtime spectra links.
      if (m.find("cudnnCreate failed") != std::string::npos) {
        const char* cudart = std::getenv("CUDNN_FRONTEND_CUDART_LIB_NAME");
        ASSERT_NE(cudart, nullptr);
        EXPECT_NE(std::string(cudart).find("libcudart.so"), std::string::npos) << cudart;
      }
    } else {
      EXPECT_NE(m.find("scripts/setup"), std::string::npos) << m;
    }
  }
  EXPECT_EQ(gpu::cudnn_attention_graphs(), 0u);
}
