// The packed ternary matmul on the GPU (kernels/ternary_packed_cuda.h) against the CPU's
// kernels::packed_matmul on fresh random weights (packed on the CPU) and activations (never
// zero), at shapes that are not multiples of 32, 64 or 256 columns, with scale blocks along
// columns that cut the 256-column code blocks (1792 / 2 = 896, 1792 / 4 = 448, 515 / 5 = 103)
// and along rows, for n = 1 (decode), 7 (a partial tile) and 70 (several tiles): exact mode
// within 1e-5 relative (f32 sums in another order), int8 mode bit for bit. Outputs are poisoned
// with NaN first (every element must be written). DISABLED_BenchAgainstCublas times the packed
// kernels against cuBLAS's bf16 GEMV/GEMM (scripts/gpu-check's step "packedbench").
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <tuple>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "dist/sharded_weights.h"
#include "kernels/matmul.h"
#include "kernels/ternary_packed.h"
#include "kernels/ternary_packed_cuda.h"

using namespace spectra;
using kernels::Activations;
using kernels::PackedTernary;

namespace {

uint64_t g_seed = 7000;

// A host f32 tensor of N(0, scale²) values plus `shift` (so no value is zero in practice).
Tensor randn(Shape s, double scale = 1.0, double shift = 0.0) {
  Tensor t = Tensor::empty(std::move(s));
  const uint64_t key = g_seed++;
  for (int64_t i = 0; i < t.numel(); i++)
    t.data<float>()[i] = float(shift + scale * philox_normal(key, uint64_t(i)));
  return t;
}
Tensor poisoned(Shape s) { return Tensor::full(std::move(s), NAN, DType::f32, Device::cuda()); }

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

// Elements whose f32 bits differ (the GPU result copied to the host).
int64_t bits_differ(const Tensor& gpu_out, const Tensor& cpu_out) {
  Tensor a = gpu_out.to(Device::cpu());
  EXPECT_EQ(a.numel(), cpu_out.numel());
  int64_t differ = 0;
  for (int64_t i = 0; i < a.numel(); i++) {
    uint32_t x, y;
    std::memcpy(&x, a.data<float>() + i, 4);
    std::memcpy(&y, cpu_out.data<float>() + i, 4);
    differ += x != y;
  }
  return differ;
}

struct Case {
  int64_t rows, cols, groups;
  int axis;
};
// Rows and columns off every tile size; column scale blocks that split code blocks (896, 448,
// 103 columns), row scale blocks, and a single γ.
const Case kCases[] = {{37, 515, 1, 1}, {37, 515, 5, 1}, {33, 1792, 2, 1}, {33, 1792, 4, 1},
                       {12, 300, 3, 0}, {12, 300, 4, 0}, {5, 64, 1, 0},    {64, 2048, 1, 1}};

class PackedTernaryCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available())
      GTEST_SKIP() << "no GPU: CUDA kernel checks skipped (run scripts/gpu-check on a GPU host)";
  }
};

// Runs both modes on the GPU with x given as `dt` (the CPU sees the same values in f32).
void check_case(const Case& k, int64_t n, DType dt) {
  SCOPED_TRACE(::testing::Message() << k.rows << "x" << k.cols << " axis " << k.axis << " groups "
                                    << k.groups << " n " << n << " " << dtype_name(dt));
  const PackedTernary p =
      kernels::pack_ternary(randn({k.rows, k.cols}, 0.02), 1e-5f, k.groups, k.axis);
  const PackedTernary d = kernels::to_device(p, Device::cuda());
  ASSERT_TRUE(d.codes.is_cuda() && d.gamma.is_cuda());
  Tensor x = randn({n, k.cols}, 1.0, 0.01);
  if (dt != DType::f32) x = x.to(dt).to(DType::f32);  // the values the GPU will see
  const Tensor xg = x.to(dt).to(Device::cuda());
  for (Activations mode : {Activations::exact, Activations::int8}) {
    SCOPED_TRACE(kernels::activations_name(mode));
    Tensor y_cpu = Tensor::full({n, k.rows}, NAN);
    kernels::packed_matmul(p, x, y_cpu, mode);
    Tensor y_gpu = poisoned({n, k.rows});
    kernels::packed_matmul_cuda(d, xg, y_gpu, mode);
    if (mode == Activations::exact)
      EXPECT_LE(rel_err(y_gpu, y_cpu), 1e-5);
    else
      EXPECT_EQ(bits_differ(y_gpu, y_cpu), 0) << "int8 mode must equal the CPU bit for bit";
  }
}

}  // namespace

TEST_F(PackedTernaryCuda, MatchesTheCpu) {
  for (const Case& k : kCases)
    for (int64_t n : {1, 7, 70}) check_case(k, n, DType::f32);
}

TEST_F(PackedTernaryCuda, Bf16Activations) {
  for (int64_t n : {1, 3}) check_case(kCases[3], n, DType::bf16);  // 33x1792, 4 column blocks
}

// Leading dimensions flatten; an all-zero activation row gives scale 0 and zeros in int8 mode,
// exact zeros in exact mode, beside ordinary rows.
TEST_F(PackedTernaryCuda, ZeroRowAndLeadingDimensions) {
  const PackedTernary p = kernels::pack_ternary(randn({20, 700}, 0.02), 1e-5f, 2, 1);
  const PackedTernary d = kernels::to_device(p, Device::cuda());
  Tensor x = randn({2, 3, 700}, 1.0, 0.01);
  std::fill(x.data<float>() + 700, x.data<float>() + 1400, 0.f);  // row 1
  for (Activations mode : {Activations::exact, Activations::int8}) {
    Tensor y_cpu = Tensor::full({2, 3, 20}, NAN);
    kernels::packed_matmul(p, x, y_cpu, mode);
    Tensor y_gpu = poisoned({2, 3, 20});
    kernels::packed_matmul_cuda(d, x.to(Device::cuda()), y_gpu, mode);
    Tensor h = y_gpu.to(Device::cpu());
    for (int64_t r = 0; r < 20; r++) EXPECT_EQ(h.data<float>()[20 + r], 0.f) << r;
    if (mode == Activations::exact)
      EXPECT_LE(rel_err(y_gpu, y_cpu), 1e-5);
    else
      EXPECT_EQ(bits_differ(y_gpu, y_cpu), 0);
  }
}

TEST_F(PackedTernaryCuda, RefusesHostTensors) {
  const PackedTernary p = kernels::pack_ternary(randn({4, 256}, 0.02), 1e-5f, 1, 0);
  Tensor x = randn({1, 256}), y = Tensor::empty({1, 4});
  EXPECT_THROW(kernels::packed_matmul_cuda(p, x, y, Activations::int8), Error);
}

// Timing, not checking: the packed kernels (int8 and exact mode, bf16 activations) against
// cuBLAS's bf16 product with the same weight shape (kernels::matmul: cuBLASLt, bf16 output), at
// decode (n = 1) and prefill (n = 512). Each call reads another copy of the weights, enough copies
// to exceed the L2 cache, so GEMV numbers are HBM numbers. GB/s counts weights, activations and
// outputs once. Run by scripts/gpu-check (step packedbench) with --gtest_also_run_disabled_tests.
// ZeRO-3's device steps (the kernels dist::ShardedWeights and the optimizer call on a GPU) against
// the CPU's on fresh random weights, for the rows a rank would hold (the last two thirds): the
// per-row sums added in row order within 1e-12 of kernels::ternary_abs_sums (f64 sums in another
// order), the codes of those rows bit for bit (the rows before them left as they were), and the
// compute copies unpacked exactly in f32 and as the CPU's rounded once in bf16.
TEST_F(PackedTernaryCuda, ZeroThreeStepsMatchTheCpu) {
  for (const Case& k : kCases) {
    SCOPED_TRACE(::testing::Message()
                 << k.rows << "x" << k.cols << " axis " << k.axis << " groups " << k.groups);
    const Tensor w = randn({k.rows, k.cols}, 0.02);
    const PackedTernary cpu = kernels::pack_ternary(w, 1e-5f, k.groups, k.axis);
    const int64_t r0 = k.rows / 3, r1 = k.rows, blocks = k.axis == 1 ? k.groups : 1;
    const Tensor part = w.slice(r0, r1);
    Tensor sums = Tensor::empty({(r1 - r0) * blocks}, DType::f64, Device::cuda());
    kernels::ternary_row_abs_sums_cuda(part.to(Device::cuda()), r0, r1, cpu, sums);
    std::vector<double> want(size_t(k.groups), 0.0), got(size_t(k.groups), 0.0);
    kernels::ternary_abs_sums(part.data<float>(), r0, r1, cpu, want.data());
    const std::vector<double> rows = sums.to_doubles();
    for (int64_t r = 0; r < r1 - r0; r++)
      for (int64_t b = 0; b < blocks; b++)
        got[size_t(k.axis == 1 ? b : cpu.block_of_row(r0 + r))] += rows[size_t(r * blocks + b)];
    for (int64_t g = 0; g < k.groups; g++)
      EXPECT_NEAR(got[size_t(g)], want[size_t(g)], 1e-12 * want[size_t(g)]) << "block " << g;

    PackedTernary d = kernels::to_device(cpu, Device::cuda());
    d.codes = Tensor::zeros(cpu.codes.shape(), DType::u8, Device::cuda());  // all trits -1
    kernels::pack_ternary_rows_cuda(part.to(Device::cuda()), r0, r1, d);
    const Tensor codes = d.codes.to(Device::cpu());
    const int64_t row_bytes = cpu.row_bytes();
    EXPECT_EQ(
        std::memcmp(codes.data<uint8_t>() + r0 * row_bytes,
                    cpu.codes.data<uint8_t>() + r0 * row_bytes, size_t((r1 - r0) * row_bytes)),
        0);
    for (int64_t i = 0; i < r0 * row_bytes; i++) ASSERT_EQ(codes.data<uint8_t>()[i], 0) << i;

    Tensor want_out = Tensor::empty({k.rows, k.cols}), want_gamma = Tensor::empty({k.groups});
    kernels::unpack_ternary_quantized(cpu, want_out, want_gamma);
    const PackedTernary full = kernels::to_device(cpu, Device::cuda());
    for (DType dt : {DType::f32, DType::bf16}) {
      Tensor out = Tensor::full({k.rows, k.cols}, NAN, dt, Device::cuda());
      Tensor gamma = poisoned({k.groups});
      kernels::unpack_ternary_quantized_cuda(full, out, gamma);
      EXPECT_EQ(out.to_doubles(), want_out.to(dt).to_doubles()) << dtype_name(dt);
      EXPECT_EQ(gamma.to_doubles(), want_gamma.to_doubles());
    }
  }
}

// ZeRO-3's replicated weights on the GPU (dist::ShardedWeights with device buffers): two ranks
// simulated in one process, each one's device ShardedWeights against its CPU twin on the same
// shard: the γ sums within 1e-12 (a tree in another order), then, from the same sums, every
// byte of the rank's own parts (codes, f32 floats and floats cast to bf16) bit for bit.
TEST_F(PackedTernaryCuda, ShardedWeightsEncodeAsOnTheCpu) {
  std::vector<dist::ArenaParam> params;
  int64_t at = 0;
  for (auto [rows, cols, ternary, groups, axis, dtype] :
       {std::tuple{1, 80, false, 1, 0, DType::f32},
        {96, 300, true, 1, 0, DType::f32},
        {40, 512, true, 2, 1, DType::f32},
        {37, 80, false, 1, 0, DType::bf16},
        {3, 7, false, 1, 0, DType::bf16},
        {200, 80, true, 4, 0, DType::f32}}) {
    dist::ArenaParam p;
    p.begin = at, p.end = at += int64_t(rows) * cols;
    p.cols = rows > 1 ? cols : 0, p.ternary = ternary, p.groups = groups, p.axis = axis;
    p.dtype = dtype;
    params.push_back(p);
  }
  const Tensor arena = randn({at}, 0.02);
  const int d = 2;
  const std::vector<dist::ShardedWeights::Bucket> buckets = {
      {0, params[2].end, dist::split_rows(0, params[2].end, d, params)},
      {params[2].end, at, dist::split_rows(params[2].end, at, d, params)}};
  for (int r = 0; r < d; r++) {
    SCOPED_TRACE(::testing::Message() << "rank " << r);
    std::vector<float> mine;  // the rank's parts of the buckets, one after another
    for (const auto& b : buckets) {
      int64_t from = b.begin;
      for (int q = 0; q < r; q++) from += b.counts[size_t(q)];
      mine.insert(mine.end(), arena.data<float>() + from,
                  arena.data<float>() + from + b.counts[size_t(r)]);
    }
    const Tensor shard = Tensor::from(mine, {int64_t(mine.size())});
    dist::ShardedWeights cpu(params, buckets, r, 1e-5f, Tensor::zeros({at}));
    dist::ShardedWeights gpu(params, buckets, r, 1e-5f,
                             Tensor::zeros({at}, DType::f32, Device::cuda()));
    const Tensor shard_gpu = shard.to(Device::cuda());
    const std::vector<double> want = cpu.abs_sums(shard).to_doubles(),
                              got = gpu.abs_sums(shard_gpu).to_doubles();
    ASSERT_EQ(got.size(), want.size());
    for (size_t g = 0; g < want.size(); g++) EXPECT_NEAR(got[g], want[g], 1e-12 * want[g]) << g;
    // Both from the CPU's sums (this rank's twice: the other rank's would do as well).
    Tensor all = Tensor::empty({cpu.scale_blocks() * d}, DType::f64);
    for (int q = 0; q < d; q++)
      all.slice(q * cpu.scale_blocks(), (q + 1) * cpu.scale_blocks())
          .copy_from(cpu.abs_sums(shard));
    cpu.set_gammas(all), gpu.set_gammas(all);
    cpu.encode(shard), gpu.encode(shard_gpu);
    for (size_t i = 0; i < buckets.size(); i++) {
      int64_t from = 0;
      for (int q = 0; q < r; q++) from += cpu.byte_counts(i)[size_t(q)];
      const int64_t n = cpu.byte_counts(i)[size_t(r)];
      const Tensor want_bytes = cpu.bucket_bytes(i).slice(from, from + n),
                   got_bytes = gpu.bucket_bytes(i).slice(from, from + n).to(Device::cpu());
      EXPECT_EQ(std::memcmp(got_bytes.raw(), want_bytes.raw(), size_t(n)), 0) << "bucket " << i;
    }
  }
}

TEST_F(PackedTernaryCuda, DISABLED_BenchAgainstCublas) {
  struct Shape2 {
    int64_t rows, cols;
  };
  const Shape2 shapes[] = {{1280, 3072}, {3072, 1280}, {2048, 6144}, {6144, 2048}};
  const double kRotateBytes = 256e6;  // > L2 (50 MB on H100/H200)
  // Mean µs per call over `iters` calls after `warmup`; fn(i) runs call i.
  auto time_us = [](const std::function<void(int)>& fn, int warmup, int iters) {
    for (int i = 0; i < warmup; i++) fn(i);
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; i++) fn(i);
    cuda::synchronize();
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
               .count() /
           iters;
  };
  std::printf("%-12s %5s  %-14s %10s %9s\n", "shape", "n", "kernel", "us/call", "GB/s");
  for (const Shape2& s : shapes) {
    // Random codes 0..2 (every column is real: the widths are multiples of 256) and γ 0.01.
    PackedTernary p;
    p.rows = s.rows, p.cols = s.cols, p.groups = 1, p.axis = 0;
    p.codes = Tensor::empty({s.rows, p.row_bytes()}, DType::u8);
    Rng rng{g_seed++, 0};
    for (int64_t i = 0; i < p.codes.numel(); i++) {
      uint8_t b = 0;
      for (int k = 0; k < 4; k++) b = uint8_t(b | (rng.below(3) << (2 * k)));
      p.codes.data<uint8_t>()[i] = b;
    }
    p.gamma = Tensor::full({1}, 0.01);
    const double packed_bytes = double(p.nbytes()), dense_bytes = 2.0 * double(s.rows * s.cols);
    std::vector<PackedTernary> packed(size_t(std::ceil(kRotateBytes / packed_bytes)));
    for (auto& c : packed) c = kernels::to_device(p, Device::cuda());
    std::vector<Tensor> dense(size_t(std::ceil(kRotateBytes / dense_bytes)));
    for (auto& w : dense) w = Tensor::full({s.rows, s.cols}, 0.01, DType::bf16, Device::cuda());
    for (int64_t n : {1, 512}) {
      const Tensor x = randn({n, s.cols}, 1.0, 0.01).to(DType::bf16).to(Device::cuda());
      Tensor y = Tensor::empty({n, s.rows}, DType::f32, Device::cuda());
      Tensor yb = Tensor::empty({n, s.rows}, DType::bf16, Device::cuda());
      const int iters = n == 1 ? 200 : 50;
      const double act = 2.0 * double(n * s.cols);
      auto report = [&](const char* name, double us, double bytes) {
        std::printf("%5ldx%-6ld %5ld  %-14s %10.2f %9.1f\n", long(s.rows), long(s.cols), long(n),
                    name, us, bytes / us * 1e-3);
      };
      for (Activations mode : {Activations::int8, Activations::exact}) {
        const double us = time_us(
            [&](int i) {
              kernels::packed_matmul_cuda(packed[size_t(i) % packed.size()], x, y, mode);
            },
            5, iters);
        report(mode == Activations::int8 ? "packed int8" : "packed exact", us,
               packed_bytes + act + 4.0 * double(n * s.rows));
      }
      const double us = time_us(
          [&](int i) {
            kernels::matmul(x, false, dense[size_t(i) % dense.size()], true, yb, 1.f, 0.f, nullptr);
          },
          5, iters);
      report("cublas bf16", us, dense_bytes + act + 2.0 * double(n * s.rows));
      std::fflush(stdout);
    }
  }
}
