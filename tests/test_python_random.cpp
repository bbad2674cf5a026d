// eval/python_random.h (and eval/metrics.h's standard errors) against CPython 3.11: the values
// below were printed by
//   r = random.Random(seed); r.getrandbits(32) ... / r.sample(range(n), k) ...
// (one generator through all the samples, as lm-eval's sampler goes through a task's documents).
#include <gtest/gtest.h>

#include "eval/metrics.h"
#include "eval/python_random.h"

namespace spectra {
namespace {

TEST(PythonRandom, SeedsAsRandomSeedOfAnInteger) {
  PythonRandom a(1234);
  EXPECT_EQ(a.getrandbits(32), 4150886329u);
  EXPECT_EQ(a.getrandbits(32), 3342196574u);
  EXPECT_EQ(a.getrandbits(32), 1892932127u);
  PythonRandom zero(0);
  EXPECT_EQ(zero.getrandbits(32), 3626764237u);
  EXPECT_EQ(zero.getrandbits(32), 1654615998u);
  PythonRandom wide((uint64_t(1) << 40) + 5);  // two 32-bit key words
  EXPECT_EQ(wide.getrandbits(32), 2166296868u);
  EXPECT_EQ(wide.getrandbits(32), 2220160828u);
}

TEST(PythonRandom, SampleTakesPythonsTwoPaths) {
  struct Case {
    size_t n, k;
    std::vector<size_t> want;
  };
  const std::vector<Case> cases = {
      {10, 5, {7, 1, 0, 9, 4}},
      {10, 6, {0, 1, 8, 6, 2, 7}},
      {100, 6, {2, 3, 44, 82, 79, 61}},  // n above the set size: the rejection path
      {3, 3, {2, 1, 0}},
      {1000, 1, {93}},
      {50, 5, {11, 45, 7, 0, 32}},
      {7, 1, {3}},
      {1, 1, {0}},
      {200, 30, {16, 170, 138, 119, 17, 153, 172, 22,  131, 148, 11, 69,  142, 199, 165,
                 77, 123, 90,  68,  63, 167, 51,  116, 135, 198, 4,  130, 18,  1,   85}},
  };
  PythonRandom rnd(1234);
  for (const Case& c : cases) EXPECT_EQ(rnd.sample(c.n, c.k), c.want) << c.n << " " << c.k;
}

TEST(PythonRandom, RandomIsGenrandRes53) {
  PythonRandom rnd(5);
  EXPECT_EQ(rnd.random(), 0.6229016948897019);
  EXPECT_EQ(rnd.random(), 0.7417869892607294);
}

// eval/metrics.h against lm-eval 0.4.13's own functions (DISABLE_MULTIPROC=1):
//   bootstrap_stderr(perplexity, xs, 3000), mean_stderr(...), pooled_sample_stderr(...)
TEST(LmEvalMetrics, StandardErrorsAreLmEvals) {
  const std::vector<double> xs = {-1.5, -0.25, -3.0, -2.125, -0.5, -4.75, -1.0};
  EXPECT_NEAR(bootstrap_perplexity_stderr(xs, 3000), 4.828247431346682, 1e-12);
  EXPECT_NEAR(mean_stderr({1, 0, 0, 1, 1, 0, 1, 1}), 0.18298126367784995, 1e-15);
  EXPECT_NEAR(pooled_stderr({0.1, 0.2, 0.15}, {10, 20, 5}), 0.12155980303655363, 1e-15);
}

}  // namespace
}  // namespace spectra
