// GPTQ on the GPU against the CPU reference, on fresh random inputs: the Hessian (cuBLAS vs
// OpenBLAS), the factorization (cuSOLVER vs LAPACK), the column loop (the same per-row code) and
// the lazy updates (cuBLAS) must quantize to the same weights up to near-ties, with the same
// layer error; and a whole model quantized on each device must agree the same way.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "quant/gptq.h"
#include "quant/quantlm.h"

using namespace spectra;
using namespace spectra::quant;

namespace {

#define SKIP_WITHOUT_GPU() \
  if (!cuda::available()) GTEST_SKIP() << "no usable GPU: the CUDA quantizer is not checked"

Tensor normal(Shape shape, uint64_t key, float std = 1) {
  Tensor t = Tensor::empty(shape, DType::f32);
  for (int64_t i = 0; i < t.numel(); i++) t.data<float>()[i] = std * philox_normal(key, i);
  return t;
}

double same_fraction(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()), y = b.to(Device::cpu());
  int64_t same = 0;
  for (int64_t i = 0; i < x.numel(); i++) same += x.data<float>()[i] == y.data<float>()[i];
  return double(same) / double(x.numel());
}

}  // namespace

TEST(QuantCuda, GptqMatchesTheCpuReference) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 384, in = 640;  // 5 column blocks, rows not a multiple of the launch
  Tensor w = normal({rows, in}, 101, 0.05f), x = normal({2048, in}, 102);
  for (int64_t i = 0; i < x.numel(); i++) x.data<float>()[i] *= 0.5f + float(i % in % 5);
  Hessian hc(in, Device::cpu()), hg(in, Device::cuda());
  hc.add(x);
  hg.add(x.to(Device::cuda()));
  const Tensor h_cpu = hc.mean(), h_gpu = hg.mean();
  EXPECT_GT(same_fraction(h_cpu, h_gpu), 0.5);  // summation order differs; values agree:
  double num = 0, den = 0;
  Tensor hg_host = h_gpu.to(Device::cpu());
  for (int64_t i = 0; i < h_cpu.numel(); i++) {
    const double d = h_cpu.data<float>()[i] - hg_host.data<float>()[i];
    num += d * d, den += double(h_cpu.data<float>()[i]) * h_cpu.data<float>()[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5);
  for (int bits : {3, 4, 8})
    for (bool act_order : {false, true}) {
      SCOPED_TRACE(fmt::format("{} bits, act_order {}", bits, act_order));
      Options o{Method::gptq, {bits, true}, 128, act_order};
      // The same H on both devices: differences come from the factorization and the updates.
      QuantizedWeight c = quantize(w, &h_cpu, o), g = quantize(w.to(Device::cuda()), &h_gpu, o);
      QuantizedWeight g_same_h = quantize(w.to(Device::cuda()), &h_cpu, o);
      ASSERT_TRUE(g.weight.is_cuda());
      EXPECT_GT(same_fraction(c.weight, g_same_h.weight), 0.99);
      EXPECT_GT(same_fraction(c.weight, g.weight), 0.98);
      const double ec = layer_error(w, c.weight, h_cpu);
      const double eg = layer_error(w, g.weight.to(Device::cpu()), h_cpu);
      EXPECT_NEAR(eg / ec, 1.0, 0.01);
      o.method = Method::rtn;
      EXPECT_EQ(same_fraction(quantize(w, nullptr, o).weight,
                              quantize(w.to(Device::cuda()), nullptr, o).weight),
                1.0);  // no error feedback: the grid alone, bit for bit
    }
}

TEST(QuantCuda, ModelQuantizesAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  ModelConfig c;
  c.kind = ModelKind::floatlm;
  c.vocab_size = c.vocab_rows = 512;
  c.hidden = 256, c.ffn = 768, c.heads = 4, c.layers = 2, c.context = 128;
  LM cpu(c, {DType::f32, Device::cpu()}, DType::f32),
      gpu(c, {DType::f32, Device::cuda()}, DType::f32);
  cpu.initialize(5);
  gpu.initialize(5);
  Tensor ids = Tensor::empty({32 * 128}, DType::i32);
  Rng rng{9, 0};
  for (int64_t i = 0; i < ids.numel(); i++) ids.data<int32_t>()[i] = int32_t(rng.below(512));
  QuantSettings s;
  s.options = {Method::gptq, {4, true}, 128};
  s.samples = 32, s.seq_len = 128;
  QuantLM qc = quantize_model(cpu, &ids, s, {8, false}),
          qg = quantize_model(gpu, &ids, s, {8, false});
  ASSERT_EQ(qc.projections.size(), qg.projections.size());
  for (size_t i = 0; i < qc.projections.size(); i++) {
    SCOPED_TRACE(qc.projections[i].name);
    EXPECT_NEAR(qg.projections[i].error / qc.projections[i].error, 1.0, 0.02);
    EXPECT_LT(qg.projections[i].error, qg.projections[i].rtn_error);
  }
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  for (size_t i = 0; i < pc.size(); i++)
    EXPECT_GT(same_fraction(pc[i].second->master, pg[i].second->master), 0.97) << pc[i].first;
}
