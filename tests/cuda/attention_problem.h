// One attention problem for the CUDA attention tests (test_flash_attention_cuda,
// test_cudnn_attention_cuda): fresh random inputs rounded through the test's dtype, the CPU
// reference's forward and backward on them, and the checks of a GPU implementation's results.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "kernels/attention.h"

namespace spectra::attention_test {

namespace cpu = spectra::kernels::cpu;
using kernels::AttentionImpl;

inline uint64_t g_seed = 7000;

// A host f32 tensor of N(0, 1) values, rounded through `dt` so CPU and GPU see equal inputs.
inline Tensor randn(Shape s, DType dt) {
  Tensor t = Tensor::empty(std::move(s));
  const uint64_t key = g_seed++;
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<float>()[i] = float(philox_normal(key, uint64_t(i)));
  return t.to(dt).to(DType::f32);
}
inline Tensor dev(const Tensor& host_f32, DType dt) { return host_f32.to(dt).to(Device::cuda()); }
inline Tensor poisoned(Shape s, DType dt) {
  return Tensor::full(std::move(s), NAN, dt, Device::cuda());
}

// max |got − want| / max |want| (at least `floor`); infinite when got holds a NaN or inf.
inline double max_rel(const Tensor& got, const Tensor& want, double floor = 1e-30) {
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

}  // namespace spectra::attention_test
