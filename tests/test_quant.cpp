// GPTQ and round-to-nearest on single matrices: the grid against hand-computed values, RTN
// against a direct rounding, GPTQ's blocked f32 implementation against the unbatched algorithm
// (Frantar et al. 2022, Algorithm 1 without lazy batches) in f64 with its own Cholesky, and the
// properties everything downstream relies on (error below RTN's, codes recoverable, dead
// columns, activation order). The model-level runs are in test_quant_model.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/rng.h"
#include "quant/gptq.h"
#include "quant/gptq_block.h"

using namespace spectra;
using namespace spectra::quant;

namespace {

Tensor normal(Shape shape, uint64_t key, float std = 1) {
  Tensor t = Tensor::empty(shape, DType::f32);
  for (int64_t i = 0; i < t.numel(); i++) t.data<float>()[i] = std * philox_normal(key, i);
  return t;
}

// Correlated calibration inputs, as a layer sees them: x = z·A with a random mixing A and
// columns of different magnitudes (so H is far from diagonal and act_order matters).
Tensor inputs(int64_t n, int64_t in, uint64_t key) {
  Tensor z = normal({n, in}, key), a = normal({in, in}, key + 1, 1.f / std::sqrt(float(in)));
  for (int64_t i = 0; i < in; i++)
    for (int64_t j = 0; j < in; j++) a.data<float>()[i * in + j] += i == j ? 1.f : 0.f;
  Tensor x = Tensor::zeros({n, in});
  for (int64_t r = 0; r < n; r++)
    for (int64_t k = 0; k < in; k++) {
      const float zk = z.data<float>()[r * in + k];
      for (int64_t j = 0; j < in; j++)
        x.data<float>()[r * in + j] += zk * a.data<float>()[k * in + j];
    }
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < in; j++) x.data<float>()[r * in + j] *= 0.25f + float(j % 7);
  return x;
}

Tensor hessian_of(const Tensor& x) {
  Hessian h(x.size(1), Device::cpu());
  h.add(x);
  return h.mean();
}

// f64 Cholesky, lower: a = L·Lᵀ (textbook loop; no LAPACK).
std::vector<double> cholesky(std::vector<double> a, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    a[j * n + j] = std::sqrt(d);
    for (int64_t i = j + 1; i < n; i++) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / a[j * n + j];
    }
    for (int64_t k = j + 1; k < n; k++) a[j * n + k] = 0;
  }
  return a;
}

// GPTQ without lazy batches, in f64: returns Ŵ. Its group params come from W as updated by
// every earlier column, which is what the blocked algorithm uses when groups start at block
// boundaries (group sizes that are multiples of 128).
std::vector<double> reference_gptq(const Tensor& w, const Tensor& h32, Grid g, int64_t gs,
                                   double damp) {
  const int64_t rows = w.size(0), n = w.size(1);
  std::vector<double> W(w.data<float>(), w.data<float>() + w.numel()), H(size_t(n * n));
  for (int64_t i = 0; i < n * n; i++) H[size_t(i)] = h32.data<float>()[i];
  double mean = 0;
  for (int64_t c = 0; c < n; c++) {
    if (H[c * n + c] == 0) {
      H[c * n + c] = 1;
      for (int64_t r = 0; r < rows; r++) W[r * n + c] = 0;
    }
    mean += H[c * n + c] / double(n);
  }
  for (int64_t c = 0; c < n; c++) H[c * n + c] += damp * mean;
  // H⁻¹ = L⁻ᵀL⁻¹ by solving L·Y = I, then U = the upper factor of H⁻¹ (U = Lᵀ of chol(H⁻¹)).
  std::vector<double> L = cholesky(H, n), inv(size_t(n * n), 0.0), Y(size_t(n * n), 0.0);
  for (int64_t col = 0; col < n; col++)
    for (int64_t i = 0; i < n; i++) {
      double s = i == col ? 1 : 0;
      for (int64_t k = 0; k < i; k++) s -= L[i * n + k] * Y[k * n + col];
      Y[i * n + col] = s / L[i * n + i];
    }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t k = 0; k < n; k++) s += Y[k * n + i] * Y[k * n + j];
      inv[i * n + j] = s;
    }
  std::vector<double> Lc = cholesky(inv, n), U(size_t(n * n));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) U[i * n + j] = Lc[j * n + i];
  std::vector<double> Q(W.size());
  std::vector<GroupParams> params(static_cast<size_t>(rows));
  std::vector<float> group(static_cast<size_t>(gs));
  for (int64_t c = 0; c < n; c++) {
    for (int64_t r = 0; r < rows; r++) {
      if (c % gs == 0) {
        for (int64_t k = 0; k < gs; k++) group[size_t(k)] = float(W[r * n + c + k]);
        params[size_t(r)] = find_params(group.data(), gs, 1, g);
      }
      const GroupParams p = params[size_t(r)];
      const double q = dequantize(quantize_code(float(W[r * n + c]), p, g), p);
      Q[r * n + c] = q;
      const double err = (W[r * n + c] - q) / U[c * n + c];
      for (int64_t j = c + 1; j < n; j++) W[r * n + j] -= err * U[c * n + j];
    }
  }
  return Q;
}

double error_of(const Tensor& w, const std::vector<double>& q, const Tensor& h) {
  Tensor t = Tensor::empty(w.shape(), DType::f32);
  for (int64_t i = 0; i < t.numel(); i++) t.data<float>()[i] = float(q[size_t(i)]);
  return layer_error(w, t, h);
}

}  // namespace

TEST(Quant, GridMatchesHandComputedValues) {
  // 4-bit symmetric: scale = 2·max|w| / 15 (rounded to f16), zero 8.
  const float w[4] = {-0.3f, 0.1f, 0.25f, 0.0f};
  GroupParams p = find_params(w, 4, 1, {4, true});
  EXPECT_EQ(p.scale, f16_to_float(float_to_f16(0.6f / 15)));
  EXPECT_EQ(p.zero, 8.f);
  EXPECT_EQ(quantize_code(-0.3f, p, {4, true}), 8.f + std::nearbyint(-0.3f / p.scale));
  EXPECT_EQ(quantize_code(10.f, p, {4, true}), 15.f);  // clamped
  // Asymmetric: the range [min(w, 0), max(w, 0)], zero = round(−min / scale).
  GroupParams a = find_params(w, 4, 1, {3, false});
  EXPECT_EQ(a.scale, f16_to_float(float_to_f16(0.55f / 7)));
  EXPECT_EQ(a.zero, std::nearbyint(0.3f / a.scale));
  // All zero: the range [−1, 1]. Half-way values round to even, as torch.round.
  const float z[2] = {0, 0};
  EXPECT_EQ(find_params(z, 2, 1, {8, true}).scale, f16_to_float(float_to_f16(2.f / 255)));
  GroupParams half{1.f, 0.f};
  EXPECT_EQ(quantize_code(2.5f, half, {4, false}), 2.f);
  EXPECT_EQ(quantize_code(3.5f, half, {4, false}), 4.f);
}

TEST(Quant, RoundToNearestIsADirectRounding) {
  Tensor w = normal({40, 256}, 7, 0.02f);
  for (bool sym : {true, false}) {
    Options o{Method::rtn, {3, sym}, 64};
    QuantizedWeight q = quantize(w, nullptr, o);
    for (int64_t r = 0; r < 40; r++)
      for (int64_t c0 = 0; c0 < 256; c0 += 64) {
        GroupParams p = find_params(w.data<float>() + r * 256 + c0, 64, 1, o.grid);
        EXPECT_EQ(q.scales.data<float>()[c0 / 64 * 40 + r], p.scale);
        for (int64_t c = c0; c < c0 + 64; c++)
          ASSERT_EQ(q.weight.data<float>()[r * 256 + c],
                    dequantize(quantize_code(w.data<float>()[r * 256 + c], p, o.grid), p));
      }
  }
}

TEST(Quant, GptqMatchesTheUnbatchedAlgorithmInF64) {
  const int64_t rows = 48, in = 512;  // four 128-column blocks
  Tensor w = normal({rows, in}, 11, 0.05f), h = hessian_of(inputs(1024, in, 12));
  for (int64_t gs : {128, 256, 512}) {
    for (int bits : {3, 4}) {
      Options o{Method::gptq, {bits, true}, gs};
      QuantizedWeight q = quantize(w, &h, o);
      std::vector<double> ref = reference_gptq(w, h, o.grid, gs, o.damp);
      int64_t same = 0;
      for (int64_t i = 0; i < w.numel(); i++)
        same += q.weight.data<float>()[i] == float(ref[size_t(i)]);
      // f32 against f64 differ only where a weight lands next to a rounding boundary.
      EXPECT_GT(double(same) / double(w.numel()), 0.99)
          << "group " << gs << ", " << bits << " bits";
      const double e = layer_error(w, q.weight, h), e_ref = error_of(w, ref, h);
      EXPECT_NEAR(e / e_ref, 1.0, 0.01) << "group " << gs << ", " << bits << " bits";
    }
  }
}

TEST(Quant, GptqErrorIsBelowRoundToNearest) {
  const int64_t rows = 64, in = 256;
  Tensor w = normal({rows, in}, 21, 0.05f), h = hessian_of(inputs(1024, in, 22));
  for (int bits : {3, 4, 8})
    for (bool act_order : {false, true})
      for (bool sym : {true, false}) {
        Options o{Method::gptq, {bits, sym}, 128, act_order};
        const double e_gptq = layer_error(w, quantize(w, &h, o).weight, h);
        o.method = Method::rtn;
        const double e_rtn = layer_error(w, quantize(w, &h, o).weight, h);
        EXPECT_LT(e_gptq, 0.8 * e_rtn) << bits << " bits, act_order " << act_order;
      }
}

TEST(Quant, CodesAreRecoverableFromTheDequantizedWeights) {
  Tensor w = normal({32, 256}, 31, 0.05f), h = hessian_of(inputs(512, 256, 32));
  for (bool act_order : {false, true}) {
    Options o{Method::gptq, {3, false}, 64, act_order};
    QuantizedWeight q = quantize(w, &h, o);
    Tensor codes = recover_codes(q.weight, q.scales, q.zeros, q.g_idx, o.grid, "w");
    std::vector<int64_t> per_group(4, 0);
    for (int64_t c = 0; c < 256; c++) per_group[size_t(q.g_idx.data<int32_t>()[c])]++;
    EXPECT_EQ(per_group, std::vector<int64_t>(4, 64));
    for (int64_t i = 0; i < codes.numel(); i++) {
      ASSERT_GE(codes.data<int32_t>()[i], 0);
      ASSERT_LE(codes.data<int32_t>()[i], 7);
    }
    q.weight.data<float>()[5] += 1e-4f;  // off the grid: refused
    EXPECT_THROW(recover_codes(q.weight, q.scales, q.zeros, q.g_idx, o.grid, "w"), UserError);
  }
}

TEST(Quant, ActOrderTakesColumnsByDecreasingHessianDiagonal) {
  Tensor w = normal({16, 256}, 41, 0.05f), h = hessian_of(inputs(512, 256, 42));
  QuantizedWeight q = quantize(w, &h, {Method::gptq, {4, true}, 128, true});
  std::vector<int64_t> order(256);
  std::iota(order.begin(), order.end(), 0);
  const float* d = h.data<float>();
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return d[a * 256 + a] > d[b * 256 + b]; });
  for (int64_t i = 0; i < 256; i++) EXPECT_EQ(q.g_idx.data<int32_t>()[order[size_t(i)]], i / 128);
}

TEST(Quant, DeadColumnsQuantizeToZero) {
  Tensor x = inputs(512, 128, 51);
  for (int64_t r = 0; r < 512; r++)
    x.data<float>()[r * 128 + 5] = 0, x.data<float>()[r * 128 + 77] = 0;
  Tensor w = normal({16, 128}, 52, 0.05f), h = hessian_of(x);
  QuantizedWeight q = quantize(w, &h, {Method::gptq, {4, true}, 128});
  EXPECT_EQ(q.dead, 2);
  for (int64_t r = 0; r < 16; r++) {
    EXPECT_EQ(q.weight.data<float>()[r * 128 + 5], 0.f);
    EXPECT_EQ(q.weight.data<float>()[r * 128 + 77], 0.f);
  }
}

TEST(Quant, EightBitsIsNearlyLossless) {
  Tensor w = normal({32, 256}, 61, 0.05f), h = hessian_of(inputs(512, 256, 62));
  QuantizedWeight q = quantize(w, &h, {Method::gptq, {8, true}, 128});
  Tensor zero = Tensor::zeros(w.shape());
  // ‖(W − Ŵ)x‖² against ‖Wx‖²
  EXPECT_LT(layer_error(w, q.weight, h) / layer_error(w, zero, h), 1e-4);
}
