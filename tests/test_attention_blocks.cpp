// The causal block ranges of the flash attention kernels (kernels/attention_blocks.h) against
// brute force: every (query, key) pair with key <= query < t is visited exactly once, a block
// applies the mask exactly when it holds a pair with key > query, and the mask then removes
// exactly the pairs with key > query (keys past t included).
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernels/attention_blocks.h"

namespace ab = spectra::kernels::attn_blocks;

namespace {

const int kLengths[] = {1, 2, 7, 31, 63, 64, 65, 127, 128, 129, 300, 1000};
const int kSizes[] = {16, 32, 64, 128};

// The forward / dQ walk: query block qb visits key blocks [0, key_blocks_for_query_block).
void check_query_walk(int t, int br, int bc) {
  std::vector<int> seen(size_t(t) * size_t(t), 0);
  const int nqb = ab::cdiv(t, br);
  for (int qb = 0; qb < nqb; qb++) {
    const int q_lo = qb * br, q_hi = std::min(q_lo + br, t);  // valid queries of the block
    const int nkb = ab::key_blocks_for_query_block(qb, br, bc, t);
    const int first_masked = ab::first_masked_key_block(qb, br, bc);
    // Brute force: the blocks holding a key some valid query sees, and the ones needing a mask.
    int want_nkb = 0;
    for (int kb = 0; kb * bc < t; kb++)
      for (int q = q_lo; q < q_hi; q++)
        if (kb * bc <= q) want_nkb = kb + 1;
    ASSERT_EQ(nkb, want_nkb) << "t " << t << " br " << br << " bc " << bc << " qb " << qb;
    for (int kb = 0; kb < nkb; kb++) {
      bool any_hidden = false;  // over the block's full extent, rows past t included
      for (int q = q_lo; q < q_lo + br; q++)
        for (int k = kb * bc; k < kb * bc + bc; k++) any_hidden |= k > q;
      const bool masked = kb >= first_masked;
      EXPECT_EQ(masked, any_hidden)
          << "t " << t << " br " << br << " bc " << bc << " qb " << qb << " kb " << kb;
      for (int q = q_lo; q < q_hi; q++)
        for (int k = kb * bc; k < kb * bc + bc; k++) {
          const bool hidden = masked && ab::causal_masked(q, k);
          if (!masked) ASSERT_LE(k, q) << "an unmasked block holds a hidden key";
          if (k >= t) ASSERT_TRUE(hidden) << "a key past the end is visible";
          if (!hidden) seen[size_t(q) * size_t(t) + size_t(k)]++;
        }
    }
  }
  for (int q = 0; q < t; q++)
    for (int k = 0; k < t; k++)
      ASSERT_EQ(seen[size_t(q) * size_t(t) + size_t(k)], k <= q ? 1 : 0)
          << "t " << t << " br " << br << " bc " << bc << " q " << q << " k " << k;
}

// The dK/dV walk: key block kb visits query blocks [first_query_block, cdiv(t, br)).
void check_key_walk(int t, int bc, int br) {
  std::vector<int> seen(size_t(t) * size_t(t), 0);
  const int nkb = ab::cdiv(t, bc), nqb = ab::cdiv(t, br);
  for (int kb = 0; kb < nkb; kb++) {
    const int k_lo = kb * bc, k_hi = std::min(k_lo + bc, t);
    const int first = ab::first_query_block(kb, bc, br);
    const int unmasked = ab::first_unmasked_query_block(kb, bc, br);
    ASSERT_LT(first, nqb);
    if (first > 0) {  // the block before sees none of these keys
      for (int q = (first - 1) * br; q < first * br; q++)
        for (int k = k_lo; k < k_hi; k++) ASSERT_GT(k, q);
    }
    for (int qb = first; qb < nqb; qb++) {
      bool any_hidden = false;
      for (int q = qb * br; q < qb * br + br; q++)
        for (int k = k_lo; k < k_lo + bc; k++) any_hidden |= k > q;
      const bool masked = qb < unmasked;
      EXPECT_EQ(masked, any_hidden)
          << "t " << t << " bc " << bc << " br " << br << " kb " << kb << " qb " << qb;
      for (int q = qb * br; q < std::min(qb * br + br, t); q++)
        for (int k = k_lo; k < k_lo + bc; k++) {
          const bool hidden = masked && ab::causal_masked(q, k);
          if (!masked) ASSERT_LE(k, q) << "an unmasked block holds a hidden key";
          if (k >= t) {
            ASSERT_TRUE(hidden) << "a key past the end is visible";
            continue;
          }
          if (!hidden) seen[size_t(q) * size_t(t) + size_t(k)]++;
        }
    }
  }
  for (int q = 0; q < t; q++)
    for (int k = 0; k < t; k++)
      ASSERT_EQ(seen[size_t(q) * size_t(t) + size_t(k)], k <= q ? 1 : 0)
          << "t " << t << " bc " << bc << " br " << br << " q " << q << " k " << k;
}

}  // namespace

TEST(AttentionBlocks, MaskPredicate) {
  EXPECT_FALSE(ab::causal_masked(5, 5));
  EXPECT_FALSE(ab::causal_masked(5, 0));
  EXPECT_TRUE(ab::causal_masked(5, 6));
  EXPECT_EQ(ab::cdiv(1, 64), 1);
  EXPECT_EQ(ab::cdiv(64, 64), 1);
  EXPECT_EQ(ab::cdiv(65, 64), 2);
}

TEST(AttentionBlocks, QueryWalkVisitsEveryVisiblePairOnce) {
  for (int t : kLengths)
    for (int br : kSizes)
      for (int bc : kSizes) check_query_walk(t, br, bc);
}

TEST(AttentionBlocks, KeyWalkVisitsEveryVisiblePairOnce) {
  for (int t : kLengths)
    for (int bc : kSizes)
      for (int br : kSizes) check_key_walk(t, bc, br);
}

// The tile sizes the kernels use, at a training length.
TEST(AttentionBlocks, KernelTilesAt2048) {
  check_query_walk(2048, 128, 64);  // forward
  check_query_walk(2048, 64, 64);   // dQ
  check_key_walk(2048, 64, 64);     // dK/dV, head_dim 64
  check_key_walk(2048, 64, 32);     // dK/dV, head_dim 128
  // Whole blocks above the diagonal are skipped: query block 3 of 128 sees key blocks 0..7.
  EXPECT_EQ(ab::key_blocks_for_query_block(3, 128, 64, 2048), 8);
  EXPECT_EQ(ab::first_masked_key_block(3, 128, 64), 6);
  EXPECT_EQ(ab::first_query_block(5, 64, 32), 10);
  EXPECT_EQ(ab::first_unmasked_query_block(5, 64, 32), 12);
}
