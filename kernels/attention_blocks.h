// Causal block ranges of the tiled (flash) attention kernels, shared by the CUDA kernels
// (kernels/cuda/flash_*.cu) and their CPU test (tests/test_attention_blocks.cpp).
//
// Tq == Tk == t. Queries are cut into blocks of `br` rows, keys into blocks of `bc` rows; block i
// of size n covers rows [i·n, i·n + n) (the last one may run past t: its extra rows are zero-filled
// by the kernels and never stored). Query q sees keys 0..q: the pair (q, k) is masked when k > q.
//  - Forward and dQ: query block qb visits key blocks [0, key_blocks_for_query_block); blocks above
//    the diagonal are skipped whole, and only those from first_masked_key_block on hold some key
//    past one of the block's queries, so only they apply the mask.
//  - dK/dV: key block kb visits query blocks [first_query_block, cdiv(t, br)); only those before
//    first_unmasked_query_block apply the mask.
// Keys at or past t are only ever in masked blocks (they lie past every valid query), so the mask
// predicate alone keeps them out.
#pragma once
#include "core/hd.h"

namespace spectra::kernels::attn_blocks {

SPECTRA_HD int cdiv(int a, int b) { return (a + b - 1) / b; }

// The causal mask: key k is invisible to query q.
SPECTRA_HD bool causal_masked(int query, int key) { return key > query; }

// Number of key blocks query block qb visits: up to the block of its last valid query.
SPECTRA_HD int key_blocks_for_query_block(int qb, int br, int bc, int t) {
  const int last_query = (qb + 1) * br < t ? (qb + 1) * br - 1 : t - 1;
  return last_query / bc + 1;
}

// The first key block whose last key lies past query block qb's first query.
SPECTRA_HD int first_masked_key_block(int qb, int br, int bc) { return (qb * br + 1) / bc; }

// The first query block that holds a query at or past key block kb's first key.
SPECTRA_HD int first_query_block(int kb, int bc, int br) { return kb * bc / br; }

// The first query block whose first query lies at or past key block kb's last key.
SPECTRA_HD int first_unmasked_query_block(int kb, int bc, int br) {
  return cdiv(kb * bc + bc - 1, br);
}

}  // namespace spectra::kernels::attn_blocks
