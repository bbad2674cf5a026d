// model.attention: flash (kernels/cuda/flash_attention.cu) against the CPU reference: forward
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

using namespace spectra;
namespace cpu = spectra::kernels::cpu;
using kernels::AttentionImpl;

namespace {

uint64_t g_seed = 7000;

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

// One problem: inputs, and the CPU reference forward and backward (from gradients `g0`).
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
  // Backward on the GPU from the prefilled gradients, with the given forward results.
  void backward(AttentionImpl impl, const Tensor& og, const Tensor& lg, Tensor& dqg, Tensor& dkg,
                Tensor& dvg) const {
    dqg = dev(dq0, dt), dkg = dev(dk0, dt), dvg = dev(dv0, dt);
    kernels::attention_backward(dev(dout, dt), dev(q, dt), dev(k, dt), dev(v, dt), og, lg, scale,
                                dqg, dkg, dvg, impl);
  }
  void expect_grads(const char* what, const Tensor& dqg, const Tensor& dkg,
                    const Tensor& dvg) const {
    const double eq = max_rel(dqg, dq), ek = max_rel(dkg, dk), ev = max_rel(dvg, dv);
    std::printf("  %-32s %-22s dq %.2e  dk %.2e  dv %.2e\n", name().c_str(), what, eq, ek, ev);
    EXPECT_LE(eq, kTol) << name() << " " << what << " dq";
    EXPECT_LE(ek, kTol) << name() << " " << what << " dk";
    EXPECT_LE(ev, kTol) << name() << " " << what << " dv";
  }
  void expect_forward(const char* what, const Tensor& og, const Tensor& lg) const {
    const double eo = max_rel(og, o), el = max_rel(lg, lse, 1.0);
    std::printf("  %-32s %-22s o  %.2e  lse %.2e\n", name().c_str(), what, eo, el);
    EXPECT_LE(eo, kTol) << name() << " " << what << " o";
    EXPECT_LE(el, kLseTol) << name() << " " << what << " lse";
  }
};

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
