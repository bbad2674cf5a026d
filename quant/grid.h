// The quantization grid of GPTQ and round-to-nearest, as the reference GPTQ code (Frantar et al.
// 2022, quant.py) defines it: per group of weights, a scale and an integer zero point, and
//   code = clamp(round(w / scale) + zero, 0, maxq),   ŵ = scale · (code − zero),   maxq = 2^bits −
//   1
// with round half to even (torch.round). The group's range includes 0; symmetric grids use
// max|w| on both sides and the fixed zero 2^(bits−1); an all-zero group gets the range [−1, 1].
//
// One deliberate difference: the scale is rounded to f16 when it is found. The packed format
// stores f16 scales, so this makes ŵ = scale · (code − zero) exact in f32 and identical in the
// unpacked model file, the packed export and the error feedback GPTQ computes with (and the
// codes recoverable from ŵ exactly). A scale below f16's smallest subnormal becomes that value.
//
// Per-element math shared by the CPU reference and the CUDA kernels (core/hd.h).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "core/hd.h"

namespace spectra::quant {

struct Grid {
  int bits = 4;
  bool sym = true;
  SPECTRA_HD int maxq() const { return (1 << bits) - 1; }
};

struct GroupParams {
  float scale = 1, zero = 0;
};

// The params of one group: n weights w[0], w[stride], ..., w[(n-1)·stride].
SPECTRA_HD GroupParams find_params(const float* w, int64_t n, int64_t stride, Grid g) {
  float lo = 0, hi = 0;  // min(w, 0), max(w, 0)
  for (int64_t i = 0; i < n; i++) {
    const float x = w[i * stride];
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
  }
  if (g.sym) {
    hi = -lo > hi ? -lo : hi;
    if (lo < 0) lo = -hi;
  }
  if (lo == 0 && hi == 0) lo = -1, hi = 1;
  float scale = f16_to_float(float_to_f16((hi - lo) / float(g.maxq())));
  const float tiny = 5.9604644775390625e-8f;  // 2^-24
  scale = scale < tiny ? tiny : scale;
  if (g.sym) return {scale, float((g.maxq() + 1) / 2)};
  const float zero = rintf(-lo / scale);  // in [0, maxq] up to the scale's f16 rounding
  return {scale, zero > float(g.maxq()) ? float(g.maxq()) : zero};
}

SPECTRA_HD float quantize_code(float w, GroupParams p, Grid g) {
  const float c = rintf(w / p.scale) + p.zero;  // rintf: half to even, as torch.round
  return c < 0 ? 0.f : (c > float(g.maxq()) ? float(g.maxq()) : c);
}

SPECTRA_HD float dequantize(float code, GroupParams p) { return p.scale * (code - p.zero); }

}  // namespace spectra::quant
