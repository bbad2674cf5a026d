// ZeRO-3's replicated weights (dist/sharded_weights.h) without MPI: d ranks' ShardedWeights live in
// one process, their γ sums and parts are exchanged by hand as the all-gathers exchange them, and
// what every rank ends up holding is compared with one process's quantizer: the codes of every
// projection equal kernels::pack_ternary's bit for bit where γ agrees, γ is within an f32 ulp of
// the single process's (a sum over shards, added in another order), the floats are the latent
// weights as they are or cast once to their 16-bit dtype, and the compute copies unpacked from
// the codes are what ternary_quantize (one scale) or ternary_quantize_groups (several) write.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "dist/sharded_weights.h"
#include "kernels/ternary.h"
#include "kernels/ternary_packed.h"

namespace {

using namespace spectra;
using dist::ArenaParam;

constexpr float kEps = 1e-5f;

// A block's worth of parameters: float vectors and matrices in f32, bf16 and f16 (one of 21
// bf16 values, whose bytes the next parameter's 16-byte alignment pads), projections with one
// scale, with row blocks and with column blocks, widths that are and are not multiples of 256.
std::vector<ArenaParam> block_params() {
  struct Shape {
    int64_t rows, cols;
    bool ternary;
    int64_t groups;
    int axis;
    DType dtype = DType::f32;
  };
  const Shape shapes[] = {{1, 80, false, 1, 0},
                          {96, 80, true, 1, 0},
                          {40, 512, true, 2, 1},
                          {1, 80, false, 1, 0, DType::f16},
                          {200, 80, true, 4, 0},
                          {80, 200, true, 2, 1},
                          {37, 80, false, 1, 0, DType::bf16},
                          {3, 7, false, 1, 0, DType::bf16},
                          {64, 256, true, 1, 0},
                          {3, 300, true, 3, 0}};
  std::vector<ArenaParam> out;
  int64_t off = 0;
  for (const Shape& s : shapes) {
    ArenaParam p;
    p.begin = off;
    p.end = off += s.rows * s.cols;
    p.cols = s.rows > 1 ? s.cols : 0;
    p.ternary = s.ternary;
    p.groups = s.groups;
    p.axis = s.axis;
    p.dtype = s.dtype;
    out.push_back(p);
  }
  return out;
}

Tensor random_arena(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v[size_t(i)] = 0.02f * philox_normal(seed, uint64_t(i));
  return Tensor::from(v, {n});
}

TEST(ShardedWeights, SplitRowsCutsAtRowBoundaries) {
  const std::vector<ArenaParam> params = block_params();
  const int64_t n = params.back().end;
  for (int d : {1, 2, 3, 4, 7}) {
    const std::vector<int64_t> counts = dist::split_rows(0, n, d, params);
    ASSERT_EQ(counts.size(), size_t(d));
    int64_t at = 0;
    for (int r = 0; r < d; r++) {
      at += counts[size_t(r)];
      // Every cut lies on a row boundary of the parameter it falls in.
      for (const ArenaParam& p : params)
        if (at > p.begin && at < p.end) EXPECT_EQ((at - p.begin) % p.row_length(), 0) << d;
      // Near the even cut: at most one row (512 here) past it.
      EXPECT_LE(at - n * (r + 1) / d, 512) << d << " " << r;
      EXPECT_GE(at, n * (r + 1) / d) << d << " " << r;
    }
    EXPECT_EQ(at, n);
  }
}

TEST(ShardedWeights, EveryRankRebuildsTheSingleProcessQuantization) {
  const std::vector<ArenaParam> params = block_params();
  const int64_t n = params.back().end;
  const Tensor arena = random_arena(n, 7);
  // The single process's quantization of each projection.
  std::vector<kernels::PackedTernary> want(params.size());
  for (size_t k = 0; k < params.size(); k++)
    if (params[k].ternary)
      want[k] = kernels::pack_ternary(
          arena.slice(params[k].begin, params[k].end)
              .view({(params[k].end - params[k].begin) / params[k].cols, params[k].cols}),
          kEps, params[k].groups, params[k].axis);
  double worst_gamma = 0;
  int gammas = 0, gammas_equal = 0;
  for (int d : {2, 3, 4})
    for (int64_t cut : {int64_t(0), params[4].begin}) {  // one bucket, or two
      SCOPED_TRACE(::testing::Message() << d << " ranks, buckets cut at " << cut);
      std::vector<dist::ShardedWeights::Bucket> buckets;
      for (auto [b, e] : {std::pair{int64_t(0), cut}, {cut, n}})
        if (b < e) buckets.push_back({b, e, dist::split_rows(b, e, d, params)});
      // Each rank's shard: its parts of the buckets, one after another.
      std::vector<Tensor> shard;
      for (int r = 0; r < d; r++) {
        std::vector<float> mine;
        for (const auto& b : buckets) {
          int64_t at = b.begin;
          for (int q = 0; q < r; q++) at += b.counts[size_t(q)];
          const float* a = arena.data<float>() + at;
          mine.insert(mine.end(), a, a + b.counts[size_t(r)]);
        }
        shard.push_back(Tensor::from(mine, {int64_t(mine.size())}));
      }
      // Ranks start from zeros where their floats arrive, so nothing passes unless exchanged.
      std::vector<std::unique_ptr<dist::ShardedWeights>> rank;
      for (int r = 0; r < d; r++)
        rank.push_back(
            std::make_unique<dist::ShardedWeights>(params, buckets, r, kEps, Tensor::zeros({n})));
      // γ: every rank's sums, in rank order, to every rank.
      const int64_t g = rank[0]->scale_blocks();
      Tensor all = Tensor::empty({g * d}, DType::f64);
      for (int r = 0; r < d; r++)
        all.slice(r * g, (r + 1) * g).copy_from(rank[size_t(r)]->abs_sums(shard[size_t(r)]));
      for (int r = 0; r < d; r++) {
        rank[size_t(r)]->set_gammas(all);
        rank[size_t(r)]->encode(shard[size_t(r)]);
      }
      // The all-gathers: rank r's part of each bucket's bytes to every other rank.
      for (size_t i = 0; i < buckets.size(); i++) {
        int64_t at = 0;
        for (int r = 0; r < d; r++) {
          const int64_t c = rank[0]->byte_counts(i)[size_t(r)];
          for (int q = 0; q < d; q++) {
            if (q == r) continue;
            Tensor bytes = rank[size_t(q)]->bucket_bytes(i).slice(at, at + c);
            bytes.copy_from(rank[size_t(r)]->bucket_bytes(i).slice(at, at + c));
          }
          at += c;
        }
      }
      for (int r = 0; r < d; r++)
        for (size_t k = 0; k < params.size(); k++) {
          const ArenaParam& p = params[k];
          if (!p.ternary) {
            const Tensor got = rank[size_t(r)]->floats(k),
                         want_floats = arena.slice(p.begin, p.end).to(p.dtype);
            ASSERT_EQ(got.dtype(), p.dtype);
            ASSERT_EQ(got.nbytes(), want_floats.nbytes());
            EXPECT_EQ(std::memcmp(got.raw(), want_floats.raw(), got.nbytes()), 0)
                << "rank " << r << " param " << k;
            continue;
          }
          const kernels::PackedTernary& got = rank[size_t(r)]->packed(k);
          bool same_gamma = true;
          for (int64_t b = 0; b < p.groups; b++) {
            const float x = got.gamma.data<float>()[b], y = want[k].gamma.data<float>()[b];
            worst_gamma = std::max(worst_gamma, std::abs(double(x) - y) / y);
            same_gamma = same_gamma && x == y;
            gammas++;
            gammas_equal += x == y;
          }
          if (!same_gamma) continue;
          ASSERT_EQ(got.codes.nbytes(), want[k].codes.nbytes());
          EXPECT_EQ(std::memcmp(got.codes.raw(), want[k].codes.raw(), got.codes.nbytes()), 0)
              << "rank " << r << " param " << k;
        }
    }
  // One rounding of an f64 sum to f32: within one ulp.
  EXPECT_LE(worst_gamma, std::ldexp(1.0, -23));
  EXPECT_GT(gammas_equal, gammas / 2) << "γ equal in " << gammas_equal << " of " << gammas;
  std::printf(
      "γ equal to the single process's in %d of %d scale blocks; worst relative "
      "difference %.3g\n",
      gammas_equal, gammas, worst_gamma);
}

TEST(ShardedWeights, UnpackedComputeCopiesAreTheQuantizers) {
  const Tensor w = random_arena(96 * 200, 11).view({96, 200});
  for (auto [groups, axis] : {std::pair{int64_t(1), 0}, {4, 0}, {2, 1}}) {
    const kernels::PackedTernary p = kernels::pack_ternary(w, kEps, groups, axis);
    Tensor want = Tensor::empty({96, 200}), want_gamma = Tensor::empty({groups});
    if (groups == 1)
      kernels::ternary_quantize(w, kEps, want, want_gamma);
    else
      kernels::ternary_quantize_groups(w, kEps, groups, axis, want, want_gamma);
    Tensor got = Tensor::empty({96, 200}), gamma = Tensor::empty({groups});
    kernels::unpack_ternary_quantized(p, got, gamma);
    EXPECT_EQ(gamma.to_doubles(), want_gamma.to_doubles());
    EXPECT_EQ(got.to_doubles(), want.to_doubles()) << groups << " scales along " << axis;
  }
}

}  // namespace
