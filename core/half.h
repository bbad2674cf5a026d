// Host-side 16-bit float storage types and conversions (round to nearest even). On the GPU the
// kernels use __nv_bfloat16 / __half, which have the same bit layout.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/hd.h"

namespace spectra {

struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  uint16_t bits;
};

SPECTRA_HD float bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
SPECTRA_HD uint32_t float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

SPECTRA_HD float bf16_to_float(bf16_t h) { return bits_to_float(uint32_t(h.bits) << 16); }
SPECTRA_HD bf16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return bf16_t{uint16_t(u >> 16)};
}

// IEEE binary16, round to nearest even, with subnormals.
SPECTRA_HD float f16_to_float(f16_t h) {
  uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu, man = h.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    float f = float(man) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}
SPECTRA_HD f16_t float_to_f16(float f) {
  uint32_t u = float_to_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return f16_t{uint16_t(sign | 0x7e00u)};   // NaN
  if (a >= 0x477ff000u) return f16_t{uint16_t(sign | 0x7c00u)};  // overflow to inf
  if (a < 0x38800000u) {                                         // subnormal or zero
    float m = bits_to_float(a) * 16777216.0f;                    // scale by 2^24
    uint32_t q = uint32_t(m);
    float r = m - float(q);
    if (r > 0.5f || (r == 0.5f && (q & 1u))) q++;
    return f16_t{uint16_t(sign | q)};
  }
  uint32_t e = ((a >> 23) - 112) << 10, man = (a >> 13) & 0x3ffu;
  uint32_t h = e | man, rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return f16_t{uint16_t(sign | h)};
}

}  // namespace spectra
