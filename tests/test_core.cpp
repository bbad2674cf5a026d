#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/cuda_runtime.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace spectra;

TEST(Tensor, ViewsShareStorage) {
  Tensor x = Tensor::zeros({4, 3});
  Tensor rows = x.slice(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  rows.data<float>()[0] = 7.f;
  EXPECT_EQ(x.data<float>()[3], 7.f);
  Tensor v = x.view({-1, 6});
  EXPECT_EQ(v.shape(), (Shape{2, 6}));
  EXPECT_THROW(x.view({5, 3}), Error);
  EXPECT_THROW(x.slice(2, 5), Error);
  EXPECT_THROW(x.data<double>(), Error);
}

TEST(Tensor, CastRoundTrips) {
  Tensor x = Tensor::from<float>({1.f, -2.5f, 3.140625f, 65504.f}, {4});
  for (DType t : {DType::bf16, DType::f16, DType::f64}) {
    std::vector<double> back = x.to(t).to(DType::f32).to_doubles();
    EXPECT_EQ(back[0], 1.0);
    EXPECT_EQ(back[1], -2.5);
    EXPECT_EQ(back[2], 3.140625);
  }
  EXPECT_EQ(x.to(DType::f16).to_doubles()[3], 65504.0);
}

TEST(Half, RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  // f16: smallest subnormal, overflow, NaN.
  EXPECT_EQ(f16_to_float(float_to_f16(5.9604644775390625e-8f)), 5.9604644775390625e-8f);
  EXPECT_TRUE(std::isinf(f16_to_float(float_to_f16(70000.f))));
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(NAN))));
  // Every f16 bit pattern that is finite survives a round trip through float.
  for (uint32_t b = 0; b < 0x10000; b++) {
    f16_t h{uint16_t(b)};
    float f = f16_to_float(h);
    if (std::isfinite(f)) EXPECT_EQ(float_to_f16(f).bits, h.bits) << b;
  }
}

TEST(Rng, PhiloxKnownAnswer) {
  // Random123's known-answer test for philox4x32-10 with counter {0,0,0,0} and key {0,0}.
  Philox4 r = philox4x32(0, 0);
  EXPECT_EQ(r.x[0], 0x6627e8d5u);
  EXPECT_EQ(r.x[1], 0xe169c58du);
  EXPECT_EQ(r.x[2], 0xbc57ac4cu);
  EXPECT_EQ(r.x[3], 0x9b00dbd8u);
}

TEST(Rng, NormalMoments) {
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double z = philox_normal(42, i);
    s += z;
    s2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
  EXPECT_NE(hash_name("a.weight"), hash_name("b.weight"));
}

TEST(Cuda, NoGpuMeansNoTouch) {
  if (!cuda::available()) {
    GTEST_SKIP() << "no GPU: CUDA runtime checks skipped";
  }
  Tensor x = Tensor::full({1000}, 3.0, DType::f32, Device::cuda());
  EXPECT_EQ(x.to(Device::cpu()).to_doubles()[999], 3.0);
}
