// Every CUDA kernel against the CPU reference on fresh random inputs, at shapes that are not
// multiples of the tile sizes, in f32 (relative error <= 1e-5) and bf16 (<= 1e-2; the CPU then
// runs on the same bf16-rounded values in f32). Outputs are poisoned with NaN before forward
// calls (every element must be written) and gradients start nonzero (backward accumulates).
#include <gtest/gtest.h>

#include <cmath>

#include "core/cuda_runtime.h"
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
namespace gpu = spectra::kernels::cuda;

namespace {

uint64_t g_seed = 1000;

// A host f32 tensor of N(0, scale²) values, rounded through `dt` so CPU and GPU see equal inputs.
Tensor randn(Shape s, DType dt = DType::f32, double scale = 1.0) {
  Tensor t = Tensor::empty(std::move(s));
  uint64_t key = g_seed++;
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<float>()[i] = float(scale * philox_normal(key, uint64_t(i)));
  return dt == DType::f32 ? t : t.to(dt).to(DType::f32);
}
Tensor dev(const Tensor& host_f32, DType dt) { return host_f32.to(dt).to(Device::cuda()); }
Tensor poisoned(Shape s, DType dt) { return Tensor::full(std::move(s), NAN, dt, Device::cuda()); }
Tensor ids(int64_t n, int64_t lo, int64_t hi, bool some_negative = false) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  Rng r{g_seed++, 0};
  for (auto& x : v) x = int32_t(lo + int64_t(r.below(uint64_t(hi - lo))));
  if (some_negative) v[0] = -1;
  return Tensor::from(v, {n});
}

double rel_err(const Tensor& gpu_out, const Tensor& cpu_out) {
  std::vector<double> a = gpu_out.to_doubles(), b = cpu_out.to_doubles();
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i])) return INFINITY;  // an unwritten (poisoned) element
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double tol(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-2; }

class KernelsCuda : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP() << "no GPU: CUDA kernel checks skipped (run scripts/gpu-check on a GPU host)";
  }
};

}  // namespace

TEST_P(KernelsCuda, Matmul) {
  DType dt = GetParam();
  for (auto [m, k, n] : {std::tuple{1, 1, 1}, {7, 13, 5}, {100, 257, 33}, {512, 384, 1000}})
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        Tensor a = randn(ta ? Shape{k, m} : Shape{m, k}, dt),
               b = randn(tb ? Shape{n, k} : Shape{k, n}, dt);
        Tensor c0 = randn({m, n});
        Tensor scale = Tensor::full({1}, 0.37);
        Tensor c_cpu = c0.clone();
        cpu::matmul(a, ta, b, tb, c_cpu, 1.5f, 0.5f, &scale);
        Tensor c_gpu = c0.to(Device::cuda());  // f32 output, 16-bit inputs
        Tensor sg = scale.to(Device::cuda());
        kernels::matmul(dev(a, dt), ta, dev(b, dt), tb, c_gpu, 1.5f, 0.5f, &sg);
        EXPECT_LE(rel_err(c_gpu, c_cpu), tol(dt))
            << m << "x" << k << "x" << n << " ta " << ta << " tb " << tb;
        Tensor c_same = poisoned({m, n}, dt);  // output in the input dtype, beta 0
        Tensor c_ref = Tensor::empty({m, n});
        cpu::matmul(a, ta, b, tb, c_ref, 1.f, 0.f, nullptr);
        kernels::matmul(dev(a, dt), ta, dev(b, dt), tb, c_same, 1.f, 0.f, nullptr);
        EXPECT_LE(rel_err(c_same, c_ref), tol(dt));
      }
}

TEST_P(KernelsCuda, TernaryQuantize) {
  DType dt = GetParam();
  for (int64_t n : {1, 7, 1000, 123457}) {
    Tensor w = randn({n}, DType::f32, 0.02);
    Tensor t_cpu = Tensor::empty({n}), g_cpu = Tensor::empty({1});
    cpu::ternary_quantize(w, 1e-5f, t_cpu, g_cpu);
    Tensor t_gpu = poisoned({n}, dt), g_gpu = poisoned({1}, DType::f32);
    kernels::ternary_quantize(w.to(Device::cuda()), 1e-5f, t_gpu, g_gpu);
    EXPECT_NEAR(g_gpu.item(), g_cpu.item(), 1e-6 * g_cpu.item()) << n;
    std::vector<double> a = t_gpu.to_doubles(), b = t_cpu.to_doubles();
    int64_t differ = 0;
    for (size_t i = 0; i < a.size(); i++) {
      EXPECT_TRUE(a[i] == -1 || a[i] == 0 || a[i] == 1) << a[i];
      differ += a[i] != b[i];
    }
    EXPECT_LE(differ, n / 10000 + 1) << "trits differ beyond rounding-boundary cases";
  }
}

// Per-block scales (the single-process form of per-shard γ): γ per block and γ·trit.
TEST_P(KernelsCuda, TernaryQuantizeGroups) {
  DType dt = GetParam();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{6, 12}, {384, 1536}})
    for (int axis : {0, 1})
      for (int64_t groups : {1, 2, 3}) {
        Tensor w = randn({rows, cols}, DType::f32, 0.02);
        Tensor e_cpu = Tensor::empty({rows, cols}), g_cpu = Tensor::empty({groups});
        cpu::ternary_quantize_groups(w, 1e-5f, groups, axis, e_cpu, g_cpu);
        Tensor e_gpu = poisoned({rows, cols}, dt), g_gpu = poisoned({groups}, DType::f32);
        kernels::ternary_quantize_groups(w.to(Device::cuda()), 1e-5f, groups, axis, e_gpu, g_gpu);
        EXPECT_LE(rel_err(g_gpu, g_cpu), 1e-6) << axis << " " << groups;
        std::vector<double> a = e_gpu.to_doubles(), b = e_cpu.to_doubles();
        int64_t differ = 0;
        for (size_t i = 0; i < a.size(); i++)
          differ += std::abs(a[i] - b[i]) > tol(dt) * std::abs(b[i]) + 1e-12;
        EXPECT_LE(differ, rows * cols / 10000 + 1) << axis << " " << groups;
      }
}

TEST_P(KernelsCuda, RmsNorm) {
  DType dt = GetParam();
  for (auto [n, d] : {std::pair{1, 64}, {7, 13}, {300, 1792}}) {
    Tensor x = randn({n, d}, dt), g = randn({d}, dt), dy = randn({n, d}, dt);
    Tensor y = Tensor::empty({n, d}), rstd = Tensor::empty({n});
    cpu::rmsnorm_forward(x, g, 1e-5f, y, rstd);
    Tensor yg = poisoned({n, d}, dt), rg = poisoned({n}, DType::f32);
    kernels::rmsnorm_forward(dev(x, dt), g.to(Device::cuda()), 1e-5f, yg, rg);
    EXPECT_LE(rel_err(yg, y), tol(dt));
    EXPECT_LE(rel_err(rg, rstd), tol(dt));
    Tensor dx0 = randn({n, d}, dt), dg0 = randn({d});
    Tensor dx = dx0.clone(), dg = dg0.clone();
    cpu::rmsnorm_backward(dy, x, g, rstd, dx, dg);
    Tensor dxg = dev(dx0, dt), dgg = dg0.to(Device::cuda());
    kernels::rmsnorm_backward(dev(dy, dt), dev(x, dt), g.to(Device::cuda()), rg, dxg, dgg);
    EXPECT_LE(rel_err(dxg, dx), tol(dt));
    EXPECT_LE(rel_err(dgg, dg), tol(dt));
  }
}

// The fused residual add + RMSNorm against the CPU reference, with h rounded to the activation
// dtype before the norm as the kernel rounds it.
TEST_P(KernelsCuda, AddRmsNorm) {
  DType dt = GetParam();
  for (auto [n, d] : {std::pair{1, 64}, {7, 13}, {300, 1792}}) {
    Tensor x = randn({n, d}, dt), r = randn({n, d}, dt), g = randn({d}, dt);
    Tensor h = Tensor::empty({n, d}), y = Tensor::empty({n, d}), rstd = Tensor::empty({n});
    cpu::add_rmsnorm_forward(x, r, g, 1e-5f, h, y, rstd);
    h = h.to(dt).to(DType::f32);  // the kernel stores h in dt and normalizes that
    cpu::rmsnorm_forward(h, g, 1e-5f, y, rstd);
    Tensor hg = poisoned({n, d}, dt), yg = poisoned({n, d}, dt), rg = poisoned({n}, DType::f32);
    kernels::add_rmsnorm_forward(dev(x, dt), dev(r, dt), g.to(Device::cuda()), 1e-5f, hg, yg, rg);
    EXPECT_LE(rel_err(hg, h), tol(dt));
    EXPECT_LE(rel_err(yg, y), tol(dt));
    EXPECT_LE(rel_err(rg, rstd), tol(dt));
    Tensor dy = randn({n, d}, dt), dh = randn({n, d}, dt);
    Tensor dx0 = randn({n, d}, dt), dr0 = randn({n, d}, dt), dg0 = randn({d});
    Tensor dx = dx0.clone(), dr = dr0.clone(), dg = dg0.clone();
    cpu::add_rmsnorm_backward(dy, dh, h, g, rstd, dx, dr, dg);
    Tensor dxg = dev(dx0, dt), drg = dev(dr0, dt), dgg = dg0.to(Device::cuda());
    kernels::add_rmsnorm_backward(dev(dy, dt), dev(dh, dt), hg, g.to(Device::cuda()), rg, dxg, drg,
                                  dgg);
    EXPECT_LE(rel_err(dxg, dx), tol(dt));
    EXPECT_LE(rel_err(drg, dr), tol(dt));
    EXPECT_LE(rel_err(dgg, dg), tol(dt));
  }
}

TEST_P(KernelsCuda, SwiGLU) {
  DType dt = GetParam();
  for (int64_t n : {1, 1000, 70001}) {
    Tensor g = randn({n}, dt, 2.0), u = randn({n}, dt), d = randn({n}, dt);
    Tensor o = Tensor::empty({n});
    cpu::swiglu_forward(g, u, o);
    Tensor og = poisoned({n}, dt);
    kernels::swiglu_forward(dev(g, dt), dev(u, dt), og);
    EXPECT_LE(rel_err(og, o), tol(dt));
    Tensor dg0 = randn({n}, dt), du0 = randn({n}, dt), dg = dg0.clone(), du = du0.clone();
    cpu::swiglu_backward(d, g, u, dg, du);
    Tensor dgg = dev(dg0, dt), dug = dev(du0, dt);
    kernels::swiglu_backward(dev(d, dt), dev(g, dt), dev(u, dt), dgg, dug);
    EXPECT_LE(rel_err(dgg, dg), tol(dt));
    EXPECT_LE(rel_err(dug, du), tol(dt));
  }
}

TEST_P(KernelsCuda, Rope) {
  DType dt = GetParam();
  for (Shape s : {Shape{1, 1, 1, 2}, Shape{2, 7, 3, 64}, Shape{1, 257, 2, 128}}) {
    Tensor x = randn(s, dt), out = Tensor::empty(s);
    cpu::rope_forward(x, 5, 10000.f, out);
    Tensor og = poisoned(s, dt);
    kernels::rope_forward(dev(x, dt), 5, 10000.f, og);
    EXPECT_LE(rel_err(og, out), tol(dt));
    Tensor dx0 = randn(s, dt), dx = dx0.clone(), dxg = dev(dx0, dt);
    cpu::rope_backward(x, 5, 10000.f, dx);
    kernels::rope_backward(dev(x, dt), 5, 10000.f, dxg);
    EXPECT_LE(rel_err(dxg, dx), tol(dt));
  }
}

TEST_P(KernelsCuda, Attention) {
  DType dt = GetParam();
  for (auto [b, t, h, d] : {std::tuple{1, 1, 1, 64},
                            {2, 7, 3, 32},
                            {1, 100, 2, 64},
                            {2, 257, 2, 128},
                            {1, 130, 1, 64}}) {
    Shape s{b, t, h, d};
    Tensor q = randn(s, dt), k = randn(s, dt), v = randn(s, dt), dout = randn(s, dt);
    float scale = float(1 / std::sqrt(double(d)));
    Tensor o = Tensor::empty(s), lse = Tensor::empty({b, h, t});
    cpu::attention_forward(q, k, v, scale, o, lse);
    Tensor og = poisoned(s, dt), lg = poisoned({b, h, t}, DType::f32);
    Tensor qg = dev(q, dt), kg = dev(k, dt), vg = dev(v, dt);
    kernels::attention_forward(qg, kg, vg, scale, og, lg);
    EXPECT_LE(rel_err(og, o), tol(dt)) << t << " " << d;
    EXPECT_LE(rel_err(lg, lse), tol(dt)) << t << " " << d;
    Tensor dq0 = randn(s, dt), dk0 = randn(s, dt), dv0 = randn(s, dt);
    Tensor dq = dq0.clone(), dk = dk0.clone(), dv = dv0.clone();
    cpu::attention_backward(dout, q, k, v, o, lse, scale, dq, dk, dv);
    Tensor dqg = dev(dq0, dt), dkg = dev(dk0, dt), dvg = dev(dv0, dt);
    kernels::attention_backward(dev(dout, dt), qg, kg, vg, og, lg, scale, dqg, dkg, dvg);
    EXPECT_LE(rel_err(dqg, dq), 2 * tol(dt)) << t << " " << d;
    EXPECT_LE(rel_err(dkg, dk), 2 * tol(dt)) << t << " " << d;
    EXPECT_LE(rel_err(dvg, dv), 2 * tol(dt)) << t << " " << d;
  }
  // Tq < Tk (generation with a cache): the queries are the last Tq positions.
  Tensor q = randn({1, 5, 2, 64}, dt), k = randn({1, 70, 2, 64}, dt), v = randn({1, 70, 2, 64}, dt);
  Tensor o = Tensor::empty({1, 5, 2, 64}), lse = Tensor::empty({1, 2, 5});
  cpu::attention_forward(q, k, v, 0.125f, o, lse);
  Tensor og = poisoned({1, 5, 2, 64}, dt), lg = poisoned({1, 2, 5}, DType::f32);
  kernels::attention_forward(dev(q, dt), dev(k, dt), dev(v, dt), 0.125f, og, lg);
  EXPECT_LE(rel_err(og, o), tol(dt));
}

TEST_P(KernelsCuda, Embedding) {
  DType dt = GetParam();
  for (auto [n, v, d, off] : {std::tuple{1, 5, 8, 0}, {1000, 300, 64, 0}, {4099, 1000, 100, 500}}) {
    Tensor id = ids(n, 0, 1500 > v + off ? v + off + 3 : 1500);  // some ids outside the shard
    Tensor table = randn({v, d}, dt), out = Tensor::empty({n, d});
    cpu::embedding_forward(id, table, off, out);
    Tensor og = poisoned({n, d}, dt);
    kernels::embedding_forward(id.to(Device::cuda()), dev(table, dt), off, og);
    EXPECT_LE(rel_err(og, out), tol(dt));
    Tensor dout = randn({n, d}, dt), dt0 = randn({v, d});
    Tensor dtab = dt0.clone(), dtg = dt0.to(Device::cuda());
    cpu::embedding_backward(id, dout, off, dtab);
    kernels::embedding_backward(id.to(Device::cuda()), dev(dout, dt), off, dtg);
    EXPECT_LE(rel_err(dtg, dtab), tol(dt));
    // Deterministic: the same call twice gives identical bits.
    Tensor again = dt0.to(Device::cuda());
    kernels::embedding_backward(id.to(Device::cuda()), dev(dout, dt), off, again);
    EXPECT_EQ(again.to_doubles(), dtg.to_doubles());
  }
}

TEST_P(KernelsCuda, CrossEntropy) {
  DType dt = GetParam();
  // Offset v / 2 with targets in [0, 2v): a vocabulary-parallel shard, where some targets are
  // other shards' (no one-hot here) and some are this one's.
  for (auto [n, v] : {std::pair{1, 3}, {37, 1000}, {300, 50304}})
    for (int64_t off : {int64_t(0), int64_t(v / 2)}) {
      Tensor z = randn({n, v}, dt, 3.0), tg = ids(n, 0, off ? 2 * v : v, true);
      Tensor loss = Tensor::empty({n}), lse = Tensor::empty({n});
      cpu::cross_entropy_forward(z, tg, off, loss, lse);
      Tensor lg = poisoned({n}, DType::f32), sg = poisoned({n}, DType::f32), zg = dev(z, dt),
             tgg = tg.to(Device::cuda());
      kernels::cross_entropy_forward(zg, tgg, off, lg, sg);
      EXPECT_LE(rel_err(lg, loss), tol(dt)) << off;
      EXPECT_LE(rel_err(sg, lse), tol(dt)) << off;
      Tensor dl = randn({n}), g0 = randn({n, v}, dt), g = g0.clone(), gg = dev(g0, dt);
      cpu::cross_entropy_backward(z, tg, off, lse, dl, g);
      kernels::cross_entropy_backward(zg, tgg, off, sg, dl.to(Device::cuda()), gg);
      EXPECT_LE(rel_err(gg, g), tol(dt)) << off;
    }
  // The mean on the device (f32 losses whatever the logits' dtype) and its gradient.
  for (int64_t n : {1, 37, 5000}) {
    Tensor loss = randn({n}), tg = ids(n, -1, 4, true);
    Tensor mean = Tensor::empty({1}), count = Tensor::empty({1});
    cpu::cross_entropy_mean(loss, tg, mean, count);
    Tensor mg = poisoned({1}, DType::f32), cg = poisoned({1}, DType::f32);
    kernels::cross_entropy_mean(loss.to(Device::cuda()), tg.to(Device::cuda()), mg, cg);
    EXPECT_LE(rel_err(mg, mean), 1e-5) << n;
    EXPECT_EQ(cg.to_doubles(), count.to_doubles()) << n;
    Tensor dl = poisoned({n}, DType::f32), dref = Tensor::empty({n});
    cpu::cross_entropy_mean_backward(Tensor::full({1}, 2.0), count, dref);
    kernels::cross_entropy_mean_backward(Tensor::full({1}, 2.0).to(Device::cuda()), cg, dl);
    EXPECT_LE(rel_err(dl, dref), 1e-6) << n;
  }
}

TEST_P(KernelsCuda, AdamWOverManyTensors) {
  DType dt = GetParam();
  std::vector<kernels::AdamWTensor> c, g;
  for (int64_t n : {1, 3, 20000, 70001}) {
    kernels::AdamWTensor t{randn({n}),
                           randn({n}),
                           randn({n}, DType::f32, 0.1),
                           randn({n}, DType::f32, 0.1).to(DType::f32),
                           {},
                           n != 3};
    for (int64_t i = 0; i < n; i++) t.v.data<float>()[i] = std::abs(t.v.data<float>()[i]);
    t.compute = Tensor::empty({n});
    c.push_back(t);
    g.push_back({t.param.to(Device::cuda()), t.grad.to(Device::cuda()), t.m.to(Device::cuda()),
                 t.v.to(Device::cuda()), poisoned({n}, dt), t.decay});
    c.back().param = t.param.clone();
    c.back().m = t.m.clone();
    c.back().v = t.v.clone();
  }
  kernels::AdamWHyper h;
  h.lr = 1e-2f;
  h.step = 3;
  h.grad_scale = 0.5f;
  cpu::adamw_step(c, h);
  kernels::adamw_step(g, h);
  for (size_t i = 0; i < c.size(); i++) {
    EXPECT_LE(rel_err(g[i].param, c[i].param), 1e-6);
    EXPECT_LE(rel_err(g[i].m, c[i].m), 1e-6);
    EXPECT_LE(rel_err(g[i].v, c[i].v), 1e-6);
    EXPECT_LE(rel_err(g[i].compute, c[i].param), tol(dt));
  }
}

TEST_P(KernelsCuda, Elementwise) {
  DType dt = GetParam();
  for (int64_t n : {1, 1001, 300007}) {
    Tensor a = randn({n}, dt), b = randn({n}, dt), out = Tensor::empty({n});
    cpu::add(a, b, out);
    Tensor og = poisoned({n}, dt);
    kernels::add(dev(a, dt), dev(b, dt), og);
    EXPECT_LE(rel_err(og, out), tol(dt));
    Tensor y = randn({n}), yg = y.to(Device::cuda());  // 16-bit x into an f32 y
    cpu::axpy(0.7f, a, y);
    kernels::axpy(0.7f, dev(a, dt), yg);
    EXPECT_LE(rel_err(yg, y), 1e-6);
    Tensor s = a.clone(), sg = dev(a, dt);
    cpu::scale(s, -1.5f);
    kernels::scale(sg, -1.5f);
    EXPECT_LE(rel_err(sg, s), tol(dt));
    bool bad_c = true, bad_g = true;
    double ssq_c = cpu::sum_squares({a, b}, &bad_c),
           ssq_g = kernels::sum_squares({dev(a, dt), dev(b, dt)}, &bad_g);
    EXPECT_NEAR(ssq_g, ssq_c, 1e-5 * ssq_c);
    EXPECT_FALSE(bad_g);
    EXPECT_EQ(ssq_g, kernels::sum_squares({dev(a, dt), dev(b, dt)}, nullptr))
        << "not deterministic";
  }
  Tensor inf = Tensor::full({10}, 1.0, DType::f32, Device::cuda());
  Tensor host = Tensor::full({10}, 1.0);
  host.data<float>()[7] = INFINITY;
  inf.copy_from(host.to(Device::cuda()));
  bool bad = false;
  kernels::sum_squares({inf}, &bad);
  EXPECT_TRUE(bad);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, KernelsCuda, ::testing::Values(DType::f32, DType::bf16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

class RuntimeCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "no GPU: CUDA runtime checks skipped";
  }
};

TEST_F(RuntimeCuda, BadShapesNameTheOp) {
  Tensor a = Tensor::zeros({4, 5}, DType::f32, Device::cuda()),
         b = Tensor::zeros({6, 7}, DType::f32, Device::cuda());
  Tensor c = Tensor::zeros({4, 7}, DType::f32, Device::cuda());
  try {
    kernels::matmul(a, false, b, false, c, 1.f, 0.f, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos) << e.what();
  }
  Tensor q = Tensor::zeros({1, 4, 1, 96}, DType::f32, Device::cuda()),
         lse = Tensor::zeros({1, 1, 4}, DType::f32, Device::cuda());
  Tensor o = q.clone();
  try {
    kernels::attention_forward(q, q, q, 0.1f, o, lse);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 96"), std::string::npos) << e.what();
  }
}

TEST_F(RuntimeCuda, OutOfMemoryIsAClearError) {
  try {
    Tensor huge = Tensor::empty({int64_t(10) << 40}, DType::u8, Device::cuda());
    FAIL() << "allocated 10 TiB";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
  }
  Tensor fine = Tensor::zeros({1000}, DType::f32, Device::cuda());  // still usable afterwards
  EXPECT_EQ(fine.to(Device::cpu()).to_doubles()[999], 0.0);
}

TEST_F(RuntimeCuda, CachingAllocatorReusesBlocks) {
  size_t base = cuda::bytes_in_use();
  void* first;
  {
    Tensor t = Tensor::empty({1 << 20}, DType::f32, Device::cuda());
    first = t.raw();
    EXPECT_GE(cuda::bytes_in_use(), base + (4u << 20));
  }
  EXPECT_EQ(cuda::bytes_in_use(), base);
  Tensor again = Tensor::empty({1 << 20}, DType::f32, Device::cuda());
  EXPECT_EQ(again.raw(), first);
}

TEST_F(RuntimeCuda, CopiesAndCasts) {
  Tensor h = randn({1000});
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    Tensor d = Tensor::empty({1000}, dt, Device::cuda());
    kernels::cast(h.to(Device::cuda()), d);
    Tensor back = d.to(Device::cpu()).to(DType::f32);
    EXPECT_EQ(back.to_doubles(), h.to(dt).to(DType::f32).to_doubles()) << dtype_name(dt);
  }
}
