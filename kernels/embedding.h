// Embedding lookup: out[n] = table[ids[n] - vocab_offset] for ids in [vocab_offset,
// vocab_offset + V); other ids give a zero row (vocabulary-parallel shards: each rank holds V
// rows and the shards' outputs are summed). ids: [N] i32; table: [V, d]; out: [N, d].
#pragma once
#include "kernels/op.h"

namespace spectra::kernels {
SPECTRA_OP(void, embedding_forward, const Tensor& ids, const Tensor& table, int64_t vocab_offset,
           Tensor& out)
// dtable[ids[n] - vocab_offset] += dout[n] (acc dtype). Deterministic: no float atomics, the
// rows of one id are summed in order of n.
SPECTRA_OP(void, embedding_backward, const Tensor& ids, const Tensor& dout, int64_t vocab_offset,
           Tensor& dtable)
}  // namespace spectra::kernels
