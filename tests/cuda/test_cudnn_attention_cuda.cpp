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

using namespace spectra;
namespace cpu = spectra::kernels::cpu;
namespace gpu = spectra::kernels::cuda;
using kernels::AttentionImpl;

namespace {

uint64_t g_seed = 9000;

// A host f32 tensor of N(0, 1) values, rounded through `dt` so CPU and GPU see equal inputs.
Tensor randn(Shape s, DType dt) {
  Tensor t = Tensor::empty(std::move(s));
  const uint64_t key = g_seed++;
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<float>()[i] = float(philox_normal(key, uint64_t(i)));
  return t.to(dt).to(DType::f32);
}
Tensor dev(const Tensor& host_f32, DType dt) { return host_f32.to(dt).to(Device::cuda()); }
Tensor poisoned(Shape s, DType dt) { return Tensor::full(std::move(s), NAN, dt, Device::cuda()); }

// max |got − want| / max |want| (at least `floor`); infinite when got holds a NaN or inf.
double max_rel(const Tensor& got, const Tensor& want, double floor = 1e-30) {
  std::vector<double> a = got.to_doubles(), b = want.to_doubles();
  EXPECT_EQ(a.size(), b.size());
  double err = 0, ref = floor;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i])) return INFINITY;  // an unwritten (poisoned) element
    err = std::max(err, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return err / ref;
}

constexpr double kTol = 2e-2;     // 16-bit P and dS in the products, 16-bit outputs
constexpr double kLseTol = 1e-3;  // lse is computed and stored in f32

// One problem: inputs, and the CPU reference forward and backward (from gradients dq0, dk0, dv0:
// zero, or random when `prefill`, to check accumulation).
struct Problem {
  int64_t b, t, h, d;
  DType dt;
  float scale;
  Tensor q, k, v, dout, o, lse, dq0, dk0, dv0, dq, dk, dv;

  Problem(int64_t b_, int64_t t_, int64_t h_, int64_t d_, DType dt_, bool prefill)
      : b(b_), t(t_), h(h_), d(d_), dt(dt_), scale(float(1 / std::sqrt(double(d_)))) {
    const Shape s{b, t, h, d};
    q = randn(s, dt), k = randn(s, dt), v = randn(s, dt), dout = randn(s, dt);
    o = Tensor::empty(s), lse = Tensor::empty({b, h, t});
    cpu::attention_forward(q, k, v, scale, o, lse);
    dq0 = prefill ? randn(s, dt) : Tensor::zeros(s);
    dk0 = prefill ? randn(s, dt) : Tensor::zeros(s);
    dv0 = prefill ? randn(s, dt) : Tensor::zeros(s);
    dq = dq0.clone(), dk = dk0.clone(), dv = dv0.clone();
    cpu::attention_backward(dout, q, k, v, o, lse, scale, dq, dk, dv);
  }
  Shape shape() const { return {b, t, h, d}; }
  std::string name() const {
    return std::string(dtype_name(dt)) + " B" + std::to_string(b) + " T" + std::to_string(t) +
           " H" + std::to_string(h) + " D" + std::to_string(d);
  }

  // Forward on the GPU into poisoned outputs.
  void forward(AttentionImpl impl, Tensor& og, Tensor& lg) const {
    og = poisoned(shape(), dt), lg = poisoned({b, h, t}, DType::f32);
    kernels::attention_forward(dev(q, dt), dev(k, dt), dev(v, dt), scale, og, lg, impl);
  }
  // Backward on the GPU from the (possibly prefilled) gradients, with the given forward results.
  void backward(AttentionImpl impl, const Tensor& og, const Tensor& lg, Tensor& dqg, Tensor& dkg,
                Tensor& dvg) const {
    dqg = dev(dq0, dt), dkg = dev(dk0, dt), dvg = dev(dv0, dt);
    kernels::attention_backward(dev(dout, dt), dev(q, dt), dev(k, dt), dev(v, dt), og, lg, scale,
                                dqg, dkg, dvg, impl);
  }
  void expect_grads(const char* what, const Tensor& dqg, const Tensor& dkg,
                    const Tensor& dvg) const {
    const double eq = max_rel(dqg, dq), ek = max_rel(dkg, dk), ev = max_rel(dvg, dv);
    std::printf("  %-32s %-24s dq %.2e  dk %.2e  dv %.2e\n", name().c_str(), what, eq, ek, ev);
    EXPECT_LE(eq, kTol) << name() << " " << what << " dq";
    EXPECT_LE(ek, kTol) << name() << " " << what << " dk";
    EXPECT_LE(ev, kTol) << name() << " " << what << " dv";
  }
  void expect_forward(const char* what, const Tensor& og, const Tensor& lg) const {
    const double eo = max_rel(og, o), el = max_rel(lg, lse, 1.0);
    std::printf("  %-32s %-24s o  %.2e  lse %.2e\n", name().c_str(), what, eo, el);
    EXPECT_LE(eo, kTol) << name() << " " << what << " o";
    EXPECT_LE(el, kLseTol) << name() << " " << what << " lse";
  }
};

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
