// The packed GPTQ checkpoint layout (AutoGPTQ's, read by GPTQModel, transformers, vLLM and the
// exllama kernels) for one quantized projection W [out, in]:
//   qweight  i32 [in·bits/32, out]   codes packed along the input dimension, lowest bits first:
//                                   word i of column o holds codes (32/bits)·i + j at bit bits·j
//   qzeros   i32 [groups, out·bits/32]  zero points packed the same way along the outputs;
//                                   format v1 ("gptq") stores zero − 1, v2 ("gptq_v2") zero
//   scales   f16 [groups, out]
//   g_idx    i32 [in]               the group of each input column
// 3 bits packs 32 codes into 3 words (10 codes, 2+1 bits split, 10 codes, 1+2 split, 10 codes).
// Codes are packed 32 at a time, so both dimensions must be multiples of 32 (every Spectra
// projection's are). There is no 6-bit layout.
#pragma once
#include <string>

#include "core/tensor.h"

namespace spectra::quant {

// The multiple both dimensions of a packed weight must be (32), or 0 when `bits` has no layout.
int64_t packing_multiple(int bits);

// codes: i32 [rows, cols] (one row per packed word column). Packs along dimension 0 when
// `along_rows`, else along dimension 1; `offset` is subtracted from every code first (v1 zeros).
Tensor pack_codes(const Tensor& codes, int bits, bool along_rows, int32_t offset = 0);

}  // namespace spectra::quant
