// The packed ternary weight (kernels/ternary_packed.h) against the training quantizer
// (kernels::cpu::ternary_quantize_groups): codes and γ bit for bit for 1, 2 and 4 scale blocks
// along either axis, at column counts that are not multiples of 256 and column blocks that do not
// align with the 256-column code blocks; the documented byte layout and padding; unpacking equal
// to the quantizer's effective weights; the exact-mode matmul (f64 reference and every instruction
// set's kernels) against an f64 product with those weights; the int8 mode against its scalar
// arithmetic, bit for bit; ties and all-zero blocks; the bytes per weight.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu_isa.h"
#include "kernels/ternary.h"
#include "kernels/ternary_packed.h"

using namespace spectra;
namespace cpu = spectra::kernels::cpu;
using kernels::PackedTernary;
using Vec = std::vector<double>;

namespace {

uint64_t g_seed = 1;

// N(0, scale²) f32 values from a fresh stream (Box-Muller in double).
Tensor randn(Shape s, double scale = 1.0) {
  Tensor t = Tensor::empty(std::move(s), DType::f64);
  Rng rng{g_seed++, 0};
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<double>()[i] = scale * std::sqrt(-2 * std::log(rng.uniform())) *
                          std::cos(6.283185307179586 * rng.uniform());
  return t.to(DType::f32);
}

// The quantizer's γ [groups] and f32 effective weights [rows, cols].
struct Quantized {
  Tensor effective, gamma;
};
Quantized quantize(const Tensor& w, float eps, int64_t groups, int axis) {
  Quantized q{Tensor::full(w.shape(), NAN), Tensor::full({groups}, NAN)};
  cpu::ternary_quantize_groups(w, eps, groups, axis, q.effective, q.gamma);
  return q;
}

// Weight (r, c)'s code read straight from the documented layout, not through the struct's helpers.
int code_from_layout(const PackedTernary& p, int64_t r, int64_t c) {
  const int64_t row_bytes = (p.cols + 255) / 256 * 64;
  const uint8_t byte = p.codes.data<uint8_t>()[r * row_bytes + c / 256 * 64 + c % 64];
  return (byte >> (2 * (c % 256 / 64))) & 3;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

struct Case {
  int64_t rows, cols;
};
// Column counts below, between and above 256, 896-wide column blocks (1792 / 2), blocks of 25,
// 75, 250 columns that straddle code blocks; every size divides by 4 along both axes.
const Case kCases[] = {{8, 100}, {12, 300}, {4, 1792}, {8, 256}, {4, 1000}, {1, 4}};

TEST(TernaryPacked, CodesAndGammaEqualTheQuantizer) {
  const float eps = 1e-5f;
  for (const Case& k : kCases)
    for (int axis : {0, 1})
      for (int64_t groups : {1, 2, 4}) {
        if ((axis == 0 ? k.rows : k.cols) % groups != 0) continue;
        SCOPED_TRACE(::testing::Message()
                     << k.rows << "x" << k.cols << " axis " << axis << " groups " << groups);
        Tensor w = randn({k.rows, k.cols}, 0.02);
        Quantized q = quantize(w, eps, groups, axis);
        PackedTernary p = kernels::pack_ternary(w, eps, groups, axis);
        ASSERT_EQ(p.rows, k.rows);
        ASSERT_EQ(p.cols, k.cols);
        ASSERT_EQ(p.codes.numel(), k.rows * ((k.cols + 255) / 256 * 64));
        ASSERT_EQ(p.gamma.numel(), groups);
        for (int64_t g = 0; g < groups; g++)
          EXPECT_EQ(bits(p.gamma.data<float>()[g]), bits(q.gamma.data<float>()[g])) << g;
        const float* e = q.effective.data<float>();
        const int64_t span = (axis == 0 ? k.rows : k.cols) / groups;
        int64_t mismatches = 0, nonzero = 0;
        for (int64_t r = 0; r < k.rows; r++) {
          for (int64_t c = 0; c < k.cols; c++) {
            const float g = q.gamma.data<float>()[(axis == 0 ? r : c) / span];
            EXPECT_EQ(p.gamma_at(r, c), g);
            const float v = e[r * k.cols + c];
            const int want = v == 0.f ? 1 : (v == g ? 2 : (v == -g ? 0 : -100));
            ASSERT_NE(want, -100) << "effective weight " << v << " is not 0 or ±" << g;
            const int got = code_from_layout(p, r, c);
            mismatches += got != want;
            nonzero += want != 1;
            EXPECT_EQ(p.code_at(r, c), got);
          }
          for (int64_t c = k.cols; c < p.cols_padded(); c++)  // padding is trit 0
            EXPECT_EQ(code_from_layout(p, r, c), 1) << r << " " << c;
        }
        EXPECT_EQ(mismatches, 0);
        EXPECT_GT(nonzero, 0);  // the random weights give nonzero trits
      }
}

// One row of known trits: byte j of a block holds columns j, j+64, j+128, j+192 in bits 0-1,
// 2-3, 4-5, 6-7; a second 100-column matrix ends in padding bytes of code 1 (0x55).
TEST(TernaryPacked, ByteLayout) {
  std::vector<float> v(512);
  for (size_t c = 0; c < v.size(); c++) v[c] = float(int(c * 7 % 3) - 1);  // mean|w| = 2/3
  PackedTernary p = kernels::pack_ternary(Tensor::from(v, {1, 512}), 0.f, 1, 0);
  const uint8_t* b = p.codes.data<uint8_t>();
  ASSERT_EQ(p.codes.numel(), 128);
  for (int64_t blk = 0; blk < 2; blk++)
    for (int64_t j = 0; j < 64; j++) {
      int want = 0;
      for (int k = 0; k < 4; k++) want |= int(v[size_t(blk * 256 + j + 64 * k)] + 1) << (2 * k);
      EXPECT_EQ(int(b[blk * 64 + j]), want) << blk << " " << j;
    }
  std::vector<float> u(100, 1.f);
  PackedTernary q = kernels::pack_ternary(Tensor::from(u, {1, 100}), 0.f, 1, 0);
  ASSERT_EQ(q.codes.numel(), 64);
  // Columns 0-99 are +1 (code 2): bytes 0-35 hold columns j and j+64 (< 100), the rest only j.
  for (int64_t j = 0; j < 64; j++)
    EXPECT_EQ(int(q.codes.data<uint8_t>()[j]), j < 36 ? 0x5a : 0x56) << j;
}

TEST(TernaryPacked, UnpackEqualsEffectiveWeights) {
  const float eps = 1e-5f;
  for (const Case& k : kCases)
    for (int axis : {0, 1})
      for (int64_t groups : {1, 2, 4}) {
        if ((axis == 0 ? k.rows : k.cols) % groups != 0) continue;
        Tensor w = randn({k.rows, k.cols}, 0.02);
        Quantized q = quantize(w, eps, groups, axis);
        Tensor u = kernels::unpack_ternary(kernels::pack_ternary(w, eps, groups, axis));
        ASSERT_EQ(u.shape(), q.effective.shape());
        const float *a = u.data<float>(), *e = q.effective.data<float>();
        int64_t bad = 0;
        for (int64_t i = 0; i < u.numel(); i++)  // bit for bit, except the sign of a zero
          bad += e[i] == 0.f ? a[i] != 0.f : bits(a[i]) != bits(e[i]);
        EXPECT_EQ(bad, 0) << k.rows << "x" << k.cols << " axis " << axis << " groups " << groups;
      }
}

// The matmul variants: the f64 reference and packed_matmul on each instruction set this CPU
// has (portable C++ everywhere, AVX2, AVX-512), forced one after the other.
struct Variant {
  std::string name;
  bool reference;
  kernels::CpuIsa isa;
};
std::vector<Variant> variants() {
  std::vector<Variant> v = {{"reference", true, kernels::CpuIsa::portable}};
  for (kernels::CpuIsa isa :
       {kernels::CpuIsa::portable, kernels::CpuIsa::avx2, kernels::CpuIsa::avx512})
    if (isa <= kernels::cpu_isa_supported()) v.push_back({kernels::cpu_isa_name(isa), false, isa});
  return v;
}
void multiply(const Variant& v, const PackedTernary& p, const Tensor& x, Tensor& y,
              kernels::Activations mode = kernels::Activations::exact) {
  if (v.reference) return kernels::packed_matmul_reference(p, x, y);
  const kernels::CpuIsa before = kernels::set_cpu_isa(v.isa);
  kernels::packed_matmul(p, x, y, mode);
  kernels::set_cpu_isa(before);
}

// Shapes for the products: rows and columns off every multiple of 16/32/64/256, more rows than a
// tile (16), 896- and 448-wide column scale blocks that cut code blocks.
const Case kProductCases[] = {{8, 100}, {12, 300}, {37, 515}, {33, 1792}, {4, 1000}, {1, 4}};

TEST(TernaryPacked, MatmulEqualsUnpackedProduct) {
  const float eps = 1e-5f;
  for (const Variant& v : variants())
    for (const Case& k : kProductCases)
      for (int axis : {0, 1})
        for (int64_t groups : {1, 2, 4})
          for (int64_t n : {1, 7, 70}) {
            if ((axis == 0 ? k.rows : k.cols) % groups != 0) continue;
            SCOPED_TRACE(::testing::Message()
                         << v.name << " " << k.rows << "x" << k.cols << " axis " << axis
                         << " groups " << groups << " n " << n);
            Tensor w = randn({k.rows, k.cols}, 0.02), x = randn({n, k.cols});
            Quantized q = quantize(w, eps, groups, axis);
            PackedTernary p = kernels::pack_ternary(w, eps, groups, axis);
            Tensor y = Tensor::full({n, k.rows}, NAN);
            multiply(v, p, x, y);
            const Vec X = x.to_doubles(), E = q.effective.to_doubles(), Y = y.to_doubles();
            double num = 0, den = 1e-300;
            for (int64_t i = 0; i < n; i++)
              for (int64_t r = 0; r < k.rows; r++) {
                double want = 0;
                for (int64_t c = 0; c < k.cols; c++)
                  want += X[size_t(i * k.cols + c)] * E[size_t(r * k.cols + c)];
                const double got = Y[size_t(i * k.rows + r)];
                ASSERT_TRUE(std::isfinite(got)) << i << " " << r;
                num = std::max(num, std::abs(got - want));
                den = std::max(den, std::abs(want));
              }
            EXPECT_LE(num / den, 1e-5);
            // Leading dimensions flatten, and the thread count does not change a bit.
            Tensor y3 = Tensor::full({1, n, k.rows}, NAN);
            const int threads = omp_get_max_threads();
            omp_set_num_threads(1);
            multiply(v, p, x.view({1, n, k.cols}), y3);
            omp_set_num_threads(threads);
            EXPECT_EQ(y3.to_doubles(), Y);
          }
}

// The int8 activations, written out independently: amax, scale, round to nearest even.
struct Int8Row {
  std::vector<int> q;
  float scale;
};
Int8Row int8_row(const float* x, int64_t cols) {
  float amax = 0;
  for (int64_t c = 0; c < cols; c++) amax = std::max(amax, std::abs(x[c]));
  Int8Row out{std::vector<int>(size_t(cols), 0), amax / 127.f};
  for (int64_t c = 0; amax > 0 && c < cols; c++)
    out.q[size_t(c)] = std::max(-127, std::min(127, int(std::lrint(x[c] * (127.f / amax)))));
  return out;
}

TEST(TernaryPacked, Int8Quantization) {
  Tensor x = randn({1, 333});
  x.data<float>()[5] = -4.75f;  // the absmax is negative: -127 exactly
  std::vector<int8_t> q(333);
  float scale = 0;
  kernels::quantize_int8(x.data<float>(), 333, q.data(), &scale);
  Int8Row want = int8_row(x.data<float>(), 333);
  EXPECT_EQ(bits(scale), bits(want.scale));
  for (size_t c = 0; c < q.size(); c++) EXPECT_EQ(int(q[c]), want.q[c]) << c;
  EXPECT_EQ(int(q[5]), -127);
  std::vector<float> zero(40, 0.f), bad(40, 1.f);
  kernels::quantize_int8(zero.data(), 40, q.data(), &scale);
  EXPECT_EQ(scale, 0.f);
  EXPECT_EQ(std::count(q.begin(), q.begin() + 40, 0), 40);
  bad[3] = INFINITY;
  kernels::quantize_int8(bad.data(), 40, q.data(), &scale);
  EXPECT_TRUE(std::isnan(scale));
}

// int8 mode equals the scalar int8 arithmetic bit for bit on every instruction set:
// y = f32(f64(scale) · Σ_g f64(γ_g)·(Σ trit·q over scale block g)).
TEST(TernaryPacked, Int8MatmulEqualsScalarArithmetic) {
  const float eps = 1e-5f;
  for (const Variant& v : variants()) {
    if (v.reference) continue;
    for (const Case& k : kProductCases)
      for (int axis : {0, 1})
        for (int64_t groups : {1, 2, 4})
          for (int64_t n : {1, 7, 70}) {
            if ((axis == 0 ? k.rows : k.cols) % groups != 0) continue;
            SCOPED_TRACE(::testing::Message()
                         << v.name << " " << k.rows << "x" << k.cols << " axis " << axis
                         << " groups " << groups << " n " << n);
            Tensor w = randn({k.rows, k.cols}, 0.02), x = randn({n, k.cols}, 3.0);
            PackedTernary p = kernels::pack_ternary(w, eps, groups, axis);
            Tensor y = Tensor::full({n, k.rows}, NAN);
            multiply(v, p, x, y, kernels::Activations::int8);
            const int64_t span = (axis == 0 ? k.rows : k.cols) / groups;
            int64_t bad = 0;
            for (int64_t i = 0; i < n; i++) {
              const Int8Row a = int8_row(x.data<float>() + i * k.cols, k.cols);
              for (int64_t r = 0; r < k.rows; r++) {
                double acc = 0;
                for (int64_t g = 0; g < (axis == 1 ? groups : 1); g++) {
                  const int64_t c0 = axis == 1 ? g * span : 0, c1 = axis == 1 ? c0 + span : k.cols;
                  int64_t isum = 0;
                  for (int64_t c = c0; c < c1; c++)
                    isum += (code_from_layout(p, r, c) - 1) * a.q[size_t(c)];
                  acc += double(p.gamma.data<float>()[axis == 1 ? g : r / span]) * double(isum);
                }
                bad += bits(float(double(a.scale) * acc)) != bits(y.data<float>()[i * k.rows + r]);
              }
            }
            EXPECT_EQ(bad, 0);
          }
  }
}

// The int8 head: rows quantized like activations; the product equals the scalar arithmetic
// y = f32(f64(scale_x)·(f64(scale_w)·Σ q_w·q_x)) bit for bit on every instruction set.
TEST(TernaryPacked, Int8RowsMatmulEqualsScalarArithmetic) {
  for (const Variant& v : variants()) {
    if (v.reference) continue;
    for (const Case& k : kProductCases)
      for (int64_t n : {1, 7, 70}) {
        SCOPED_TRACE(::testing::Message()
                     << v.name << " " << k.rows << "x" << k.cols << " n " << n);
        Tensor w = randn({k.rows, k.cols}, 0.02), x = randn({n, k.cols}, 3.0);
        kernels::Int8Matrix m = kernels::quantize_rows_int8(w);
        Tensor y = Tensor::full({n, k.rows}, NAN);
        const kernels::CpuIsa before = kernels::set_cpu_isa(v.isa);
        kernels::int8_matmul(m, x, y);
        kernels::set_cpu_isa(before);
        int64_t bad = 0;
        for (int64_t r = 0; r < k.rows; r++) {
          const Int8Row wr = int8_row(w.data<float>() + r * k.cols, k.cols);
          ASSERT_EQ(bits(m.scale.data<float>()[r]), bits(wr.scale));
          for (int64_t i = 0; i < n; i++) {
            const Int8Row a = int8_row(x.data<float>() + i * k.cols, k.cols);
            int64_t isum = 0;
            for (int64_t c = 0; c < k.cols; c++) isum += wr.q[size_t(c)] * a.q[size_t(c)];
            const float want = float(double(a.scale) * (double(wr.scale) * double(isum)));
            bad += bits(want) != bits(y.data<float>()[i * k.rows + r]);
          }
        }
        EXPECT_EQ(bad, 0);
      }
  }
}

// Ties w/γ = ±0.5, ±1.5 round away from zero, as the quantizer does; all-zero scale blocks get
// γ = eps and trits 0.
TEST(TernaryPacked, TiesAndZeroBlocks) {
  const Vec w = {0.5, -0.5, 1.5, -1.5, 0.25, -0.25, 1.75, -1.75};
  const std::vector<int> want = {1, -1, 1, -1, 0, 0, 1, -1};
  for (double k : {1.0, 2.0}) {
    std::vector<float> wk;
    for (double x : w) wk.push_back(float(x * k));
    Tensor wt = Tensor::from(wk, {2, 4});
    PackedTernary p = kernels::pack_ternary(wt, 0.f, 1, 0);
    EXPECT_EQ(p.gamma.data<float>()[0], float(k));
    for (int64_t i = 0; i < 8; i++) EXPECT_EQ(p.trit_at(i / 4, i % 4), want[size_t(i)]) << i;
    Quantized q = quantize(wt, 0.f, 1, 0);
    EXPECT_EQ(kernels::unpack_ternary(p).to_doubles(), q.effective.to_doubles());
  }
  const float eps = 1e-5f;
  for (int axis : {0, 1}) {
    // Rows 1 and 3 (axis 0) or the columns of blocks 1 and 3 (axis 1) are all zero.
    Tensor z = randn({4, 300}, 0.02);
    float* d = z.data<float>();
    for (int64_t r = 0; r < 4; r++)
      for (int64_t c = 0; c < 300; c++)
        if ((axis == 0 ? r : c / 75) % 2 == 1) d[r * 300 + c] = 0.f;
    PackedTernary p = kernels::pack_ternary(z, eps, 4, axis);
    Quantized q = quantize(z, eps, 4, axis);
    for (int64_t g = 0; g < 4; g++) {
      EXPECT_EQ(bits(p.gamma.data<float>()[g]), bits(q.gamma.data<float>()[g])) << g;
      if (g % 2 == 1) EXPECT_EQ(p.gamma.data<float>()[g], eps) << axis << " " << g;
    }
    for (int64_t r = 0; r < 4; r++)
      for (int64_t c = 0; c < 300; c++)
        if ((axis == 0 ? r : c / 75) % 2 == 1) EXPECT_EQ(p.trit_at(r, c), 0) << r << " " << c;
    EXPECT_EQ(kernels::unpack_ternary(p).to_doubles(), q.effective.to_doubles());
  }
  // A whole zero matrix: γ = eps, every trit 0, and the product is 0.
  PackedTernary p = kernels::pack_ternary(Tensor::zeros({3, 10}), eps, 1, 0);
  EXPECT_EQ(p.gamma.data<float>()[0], eps);
  Tensor y = Tensor::full({2, 3}, NAN);
  kernels::packed_matmul(p, randn({2, 10}), y, kernels::Activations::exact);
  EXPECT_EQ(y.to_doubles(), Vec(6, 0.0));
}

TEST(TernaryPacked, RefusesBadArguments) {
  Tensor w = randn({4, 6});
  EXPECT_THROW(kernels::pack_ternary(w, 1e-5f, 4, 1), Error);            // 4 does not divide 6
  EXPECT_THROW(kernels::pack_ternary(w, 1e-5f, 1, 2), Error);            // no axis 2
  EXPECT_THROW(kernels::pack_ternary(randn({24}), 1e-5f, 1, 0), Error);  // not 2-D
  PackedTernary p = kernels::pack_ternary(w, 1e-5f, 2, 0);
  Tensor y = Tensor::empty({1, 4});
  EXPECT_THROW(kernels::packed_matmul(p, randn({1, 5}), y, kernels::Activations::int8), Error);
  Tensor y5 = Tensor::empty({1, 5});
  EXPECT_THROW(kernels::packed_matmul(p, randn({1, 6}), y5, kernels::Activations::exact), Error);
  EXPECT_THROW(kernels::parse_activations("int4", "--activations"), UserError);
}

// Codes, padding and γ of a 896 x 2048 matrix (rows x cols) take <= 2.1 bits per weight.
TEST(TernaryPacked, BitsPerWeight) {
  for (Case k : {Case{896, 2048}, Case{2048, 896}}) {
    PackedTernary p = kernels::pack_ternary(randn({k.rows, k.cols}, 0.02), 1e-5f, 2, 1);
    std::printf("packed %lld x %lld (2 column blocks): %zu bytes, %.4f bits/weight\n",
                (long long)k.rows, (long long)k.cols, p.nbytes(), p.bits_per_weight());
    EXPECT_EQ(p.nbytes(), size_t(k.rows * ((k.cols + 255) / 256 * 64) + 2 * 4));
    if (k.cols % 256 == 0) EXPECT_LE(p.bits_per_weight(), 2.1);
  }
}

}  // namespace
