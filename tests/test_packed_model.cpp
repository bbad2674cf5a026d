// A TriLM packed for inference (LM::pack_ternary) against the same model unpacked: every
// projection's codes and γ equal the training quantizer's (1 and several scale blocks per
// projection); `exact` logits equal the latent forward within 1e-5 relative on odd shapes (hidden,
// ffn and vocabulary off every multiple of 32), batch 1 and 7, full and cached; greedy generation
// gives the same 64 tokens; `int8` stays close; the float parameters survive the new arena; the
// memory held shrinks to the codes. Runs on the instruction set in use (ctest also runs it with
// SPECTRA_CPU_ISA=avx2 and =portable).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/var.h"
#include "eval/generate.h"
#include "kernels/cpu_isa.h"
#include "kernels/ternary.h"
#include "layers/kv_cache.h"
#include "layers/lm.h"

using namespace spectra;

namespace {

// Hidden 80 (2 heads of 40), ffn 200, vocabulary 70: no dimension is a multiple of 32.
std::unique_ptr<LM> tiny_trilm(int64_t ternary_shards) {
  ModelConfig c;
  c.kind = ModelKind::trilm;
  c.vocab_size = c.vocab_rows = 70;
  c.hidden = 80, c.ffn = 200, c.heads = 2, c.layers = 2, c.context = 96;
  c.ternary_shards = ternary_shards;
  c.init_std = 0.3f;
  auto lm = std::make_unique<LM>(c, LayerOptions{DType::f32, Device::cpu()}, DType::f32);
  lm->initialize(11);
  return lm;
}

std::vector<int32_t> tokens(int64_t n, int seed) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; i++) t.push_back(int32_t((i * 13 + seed * 7 + i * i) % 70));
  return t;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// max |a - b| / max |b|
double relative(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); i++) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

TEST(PackedModel, CodesAndGammaEqualTheTrainingQuantizer) {
  for (int64_t shards : {1, 2, 5}) {
    std::unique_ptr<LM> lm = tiny_trilm(shards);
    // The quantizer's γ and effective weights per projection, before packing frees the latents.
    struct Want {
      Tensor effective, gamma;
    };
    std::vector<Want> want;
    for (int64_t b = 0; b < lm->blocks(); b++)
      for (auto& [name, linear] : lm->block(b).projections()) {
        const Parameter& p = linear->weight();
        Want w{Tensor::empty(p.shape, DType::f32), Tensor::empty({p.scales.groups}, DType::f32)};
        kernels::ternary_quantize_groups(p.master, lm->config().ternary_eps, p.scales.groups,
                                         p.scales.axis, w.effective, w.gamma);
        want.push_back(std::move(w));
      }
    lm->pack_ternary(kernels::Activations::exact);
    size_t i = 0;
    for (int64_t b = 0; b < lm->blocks(); b++)
      for (auto& [name, linear] : lm->block(b).projections()) {
        SCOPED_TRACE(::testing::Message() << "shards " << shards << " layer " << b << " " << name);
        const kernels::PackedTernary* p = linear->packed();
        ASSERT_NE(p, nullptr);
        EXPECT_FALSE(linear->weight().master.defined());  // the latent weights are gone
        const Want& w = want[i++];
        ASSERT_EQ(p->groups, w.gamma.numel());
        EXPECT_EQ(p->groups, shards);
        for (int64_t g = 0; g < p->groups; g++)
          EXPECT_EQ(bits(p->gamma.data<float>()[g]), bits(w.gamma.data<float>()[g]));
        const float* e = w.effective.data<float>();
        int64_t bad = 0;
        for (int64_t r = 0; r < p->rows; r++)
          for (int64_t c = 0; c < p->cols; c++) {
            const float v = e[r * p->cols + c], g = p->gamma_at(r, c);
            bad += p->trit_at(r, c) != (v == 0.f ? 0 : v == g ? 1 : v == -g ? -1 : 99);
          }
        EXPECT_EQ(bad, 0);
      }
  }
}

TEST(PackedModel, ExactLogitsEqualTheLatentModel) {
  std::printf("instruction set: %s\n", kernels::cpu_isa_description().c_str());
  for (int64_t shards : {1, 2}) {
    std::unique_ptr<LM> latent = tiny_trilm(shards), packed = tiny_trilm(shards);
    const size_t before = packed->weight_bytes();
    packed->pack_ternary(kernels::Activations::exact);
    EXPECT_LT(packed->weight_bytes(), before / 3);  // the projections hold 2-bit codes
    ag::NoGradGuard no_grad;
    for (int64_t batch : {1, 7}) {
      const int64_t t = 9;
      std::vector<int32_t> ids;
      for (int64_t b = 0; b < batch; b++) {
        std::vector<int32_t> s = tokens(t, int(b));
        ids.insert(ids.end(), s.begin(), s.end());
      }
      const Tensor x = Tensor::from(ids, {batch * t});
      const std::vector<double> want = latent->logits(x, batch, t).value().to_doubles();
      const std::vector<double> got = packed->logits(x, batch, t).value().to_doubles();
      EXPECT_LE(relative(got, want), 1e-5) << "shards " << shards << " batch " << batch;
      // The loss (fused head + cross-entropy) reads the float head from the new arena.
      std::vector<int32_t> targets(ids.begin() + 1, ids.end());
      targets.push_back(-1);
      const Tensor y = Tensor::from(targets, {batch * t});
      EXPECT_NEAR(packed->loss(x, y, batch, t).value().to_doubles()[0],
                  latent->loss(x, y, batch, t).value().to_doubles()[0], 1e-5);
    }
    // Cached: a 20-token prefill and 5 single steps, against the latent model's.
    KVCache a(latent->config(), 1, 32, DType::f32, Device::cpu());
    KVCache b(packed->config(), 1, 32, DType::f32, Device::cpu());
    const std::vector<int32_t> seq = tokens(25, 3);
    for (int64_t start = 0; start < 25;) {
      const int64_t n = start == 0 ? 20 : 1;
      std::vector<int32_t> part(seq.begin() + start, seq.begin() + start + n);
      const Tensor x = Tensor::from(part, {n});
      EXPECT_LE(relative(packed->logits_cached(x, {{0, n}}, b).to_doubles(),
                         latent->logits_cached(x, {{0, n}}, a).to_doubles()),
                1e-5)
          << "cached from " << start;
      start += n;
    }
  }
}

TEST(PackedModel, GreedyGenerationEqualsTheLatentModel) {
  std::unique_ptr<LM> latent = tiny_trilm(1), packed = tiny_trilm(1);
  packed->pack_ternary(kernels::Activations::exact);
  SampleOptions o;
  o.tokens = 64;
  o.temperature = 0;
  const std::vector<std::string> prompts = {"+(/)%", "&'()*+,-./0123", "!"};  // bytes < 70
  std::vector<std::vector<int32_t>> ids[2];
  for (int k = 0; k < 2; k++) {
    ids[k].assign(prompts.size(), {});
    generate(k ? *packed : *latent, nullptr, prompts, o,
             [&](size_t i, const GeneratedToken& t) { ids[k][i].push_back(t.id); });
  }
  for (size_t i = 0; i < prompts.size(); i++) {
    EXPECT_EQ(ids[0][i].size(), 64u);
    EXPECT_EQ(ids[1][i], ids[0][i]) << "prompt " << i;
  }
}

// int8 activations (and the int8 head) move the logits by their rounding only: a few percent of
// the logits' range here, where the random weights make large activations.
TEST(PackedModel, Int8LogitsStayClose) {
  std::unique_ptr<LM> latent = tiny_trilm(2), packed = tiny_trilm(2);
  packed->pack_ternary(kernels::Activations::exact);
  const size_t exact_bytes = packed->weight_bytes();
  packed->pack_ternary(kernels::Activations::int8);
  EXPECT_NE(packed->block(0).projections()[0].second->packed(), nullptr);
  EXPECT_LT(packed->weight_bytes(), exact_bytes);  // the head's rows are int8 now
  EXPECT_THROW(packed->pack_ternary(kernels::Activations::exact), Error);  // no way back
  ag::NoGradGuard no_grad;
  const std::vector<int32_t> ids = tokens(30, 5);
  const Tensor x = Tensor::from(ids, {30});
  const std::vector<double> want = latent->logits(x, 1, 30).value().to_doubles();
  const std::vector<double> got = packed->logits(x, 1, 30).value().to_doubles();
  const double err = relative(got, want);
  std::vector<int32_t> targets(ids.begin() + 1, ids.end());
  targets.push_back(-1);
  const Tensor y = Tensor::from(targets, {30});
  EXPECT_NEAR(packed->loss(x, y, 1, 30).value().to_doubles()[0],
              latent->loss(x, y, 1, 30).value().to_doubles()[0], 0.05);
  std::printf("int8 logits: max |Δ| / max |logit| = %.4f\n", err);
  EXPECT_GT(err, 0);  // int8 really ran
  EXPECT_LT(err, 0.05);
}

// The memory the process holds (the host allocator's count) falls to the float parameters and
// the codes: the latent weights and the gradients are really freed.
TEST(PackedModel, FreesTheLatentWeights) {
  std::unique_ptr<LM> lm = tiny_trilm(2);
  const size_t before = host_bytes_in_use();
  lm->pack_ternary(kernels::Activations::int8);
  const size_t after = host_bytes_in_use();
  std::printf("host bytes: %zu before packing, %zu after; weights held %zu\n", before, after,
              lm->weight_bytes());
  EXPECT_LT(after + 4 * size_t(lm->parameter_elements()), before);  // more than the masters
}

TEST(PackedModel, RefusesWhatItCannotPack) {
  ModelConfig c;
  c.kind = ModelKind::floatlm;
  c.vocab_size = c.vocab_rows = 64;
  c.hidden = 32, c.ffn = 64, c.heads = 2, c.layers = 1, c.context = 16;
  LM floatlm(c, LayerOptions{DType::f32, Device::cpu()}, DType::f32);
  EXPECT_THROW(floatlm.pack_ternary(kernels::Activations::exact), Error);
  std::unique_ptr<LM> lm = tiny_trilm(1);
  lm->pack_ternary(kernels::Activations::exact);
  EXPECT_THROW(lm->refresh_compute(), Error);  // no latent weights left to train
}

}  // namespace
