// The packed ternary inner loops with AVX-512 (F, BW, VL) and VNNI (kernels/cpu/ternary_simd.h).
// This file is compiled with those instruction sets (CMakeLists.txt) and called only on CPUs
// that have them.
//
// A whole 64-byte code block is one register: shifting it right by 2s and masking with 3 gives
// the codes of columns 64s .. 64s + 63 of the block. vpdpbusd multiplies them (unsigned, 0..2)
// by 64 signed activations and adds each four products into an i32 lane, with no intermediate
// that could saturate.
#if defined(__x86_64__)
// GCC 12's avx512fintrin.h reads its own _mm512_undefined_* values and warns about them at every
// inlined use (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/ternary_simd.h"

namespace spectra::kernels::cpu::packed {

namespace {

// NI activation rows (1..4) against one weight row; two accumulators per row (even and odd s)
// halve the vpdpbusd dependency chain.
template <int NI>
void int8_row(const uint8_t* row, int64_t b0, int64_t b1, const int8_t* q, int64_t q_stride,
              int32_t* out) {
  const __m512i mask = _mm512_set1_epi8(3);
  __m512i acc[NI][2];
  for (int k = 0; k < NI; k++) acc[k][0] = acc[k][1] = _mm512_setzero_si512();
  for (int64_t b = b0; b < b1; b++) {
    const __m512i raw = _mm512_loadu_si512(row + b * 64);
    __m512i c[4];
    c[0] = _mm512_and_si512(raw, mask);
    c[1] = _mm512_and_si512(_mm512_srli_epi16(raw, 2), mask);
    c[2] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
    c[3] = _mm512_and_si512(_mm512_srli_epi16(raw, 6), mask);
    for (int k = 0; k < NI; k++) {
      const int8_t* a = q + k * q_stride + b * 256;
      for (int s = 0; s < 4; s++)
        acc[k][s & 1] = _mm512_dpbusd_epi32(acc[k][s & 1], c[s], _mm512_loadu_si512(a + 64 * s));
    }
  }
  for (int k = 0; k < NI; k++)
    out[k] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc[k][0], acc[k][1]));
}

// Prompts and batches: two weight rows against four activation rows at once, so each activation
// vector loaded feeds two vpdpbusd (the loads, not the multiplies, bound the one-row loop).
void int8_row_pair(const uint8_t* row0, const uint8_t* row1, int64_t b0, int64_t b1,
                   const int8_t* q, int64_t q_stride, int32_t* out0, int32_t* out1) {
  const __m512i mask = _mm512_set1_epi8(3);
  __m512i acc0[4], acc1[4];
  for (int k = 0; k < 4; k++) acc0[k] = acc1[k] = _mm512_setzero_si512();
  for (int64_t b = b0; b < b1; b++) {
    const __m512i raw0 = _mm512_loadu_si512(row0 + b * 64),
                  raw1 = _mm512_loadu_si512(row1 + b * 64);
    __m512i c0[4], c1[4];
    for (int s = 0; s < 4; s++) {
      c0[s] = _mm512_and_si512(_mm512_srli_epi16(raw0, 2 * s), mask);
      c1[s] = _mm512_and_si512(_mm512_srli_epi16(raw1, 2 * s), mask);
    }
    for (int k = 0; k < 4; k++) {
      const int8_t* a = q + k * q_stride + b * 256;
      for (int s = 0; s < 4; s++) {
        const __m512i x = _mm512_loadu_si512(a + 64 * s);
        acc0[k] = _mm512_dpbusd_epi32(acc0[k], c0[s], x);
        acc1[k] = _mm512_dpbusd_epi32(acc1[k], c1[s], x);
      }
    }
  }
  for (int k = 0; k < 4; k++) {
    out0[k] = _mm512_reduce_add_epi32(acc0[k]);
    out1[k] = _mm512_reduce_add_epi32(acc1[k]);
  }
}

// 16 bytes widen to 16 lanes; lane j >> 2s holds code s in bits 0-1, and vpermps over a table of
// trit(i & 3) (it reads the low 4 bits) gives -1, 0, +1 directly.
template <int NI>
void f32_row(const uint8_t* row, int64_t b0, int64_t b1, const float* x, int64_t x_stride,
             float* out) {
  constexpr int CH = NI == 1 ? 4 : 2;
  const __m512 table = _mm512_setr_ps(-1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0);
  __m512 acc[NI][CH];
  for (int k = 0; k < NI; k++)
    for (int c = 0; c < CH; c++) acc[k][c] = _mm512_setzero_ps();
  for (int64_t b = b0; b < b1; b++)
    for (int j = 0; j < 64; j += 16) {
      const __m512i v =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 64 + j)));
      __m512 t[4];
      t[0] = _mm512_permutexvar_ps(v, table);
      t[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 2), table);
      t[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table);
      t[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 6), table);
      for (int k = 0; k < NI; k++) {
        const float* a = x + k * x_stride + b * 256 + j;
        for (int s = 0; s < 4; s++)
          acc[k][s % CH] = _mm512_fmadd_ps(t[s], _mm512_loadu_ps(a + 64 * s), acc[k][s % CH]);
      }
    }
  for (int k = 0; k < NI; k++) {
    __m512 s = acc[k][0];
    for (int c = 1; c < CH; c++) s = _mm512_add_ps(s, acc[k][c]);
    out[k] = _mm512_reduce_add_ps(s);
  }
}

// int8 × int8 (the int8 head): vpdpbusd takes |w| unsigned and q negated where w < 0.
template <int NI>
void s8_row(const uint8_t* row, int64_t b0, int64_t b1, const int8_t* q, int64_t q_stride,
            int32_t* out) {
  __m512i acc[NI];
  for (int k = 0; k < NI; k++) acc[k] = _mm512_setzero_si512();
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t c = b0 * 64; c < b1 * 64; c += 64) {
    const __m512i w = _mm512_loadu_si512(row + c);
    const __m512i aw = _mm512_abs_epi8(w);
    const __mmask64 negative = _mm512_movepi8_mask(w);
    for (int k = 0; k < NI; k++) {
      const __m512i x = _mm512_loadu_si512(q + k * q_stride + c);
      acc[k] = _mm512_dpbusd_epi32(acc[k], aw, _mm512_mask_sub_epi8(x, negative, zero, x));
    }
  }
  for (int k = 0; k < NI; k++) out[k] = _mm512_reduce_add_epi32(acc[k]);
}

}  // namespace

void dot_s8_avx512(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  for_rows(w, q, q_stride, n, out, s8_row<1>, s8_row<2>, s8_row<3>, s8_row<4>);
}

void dot_int8_avx512(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  const int64_t n4 = n / 4 * 4, pairs = n4 > 0 ? w.rows / 2 : 0;
  for (int64_t p = 0; p < pairs; p++) {  // rows 2p, 2p+1 × activation rows [0, n4)
    const uint8_t* row = w.first_row + 2 * p * w.row_bytes;
    for (int64_t i = 0; i < n4; i += 4)
      int8_row_pair(row, row + w.row_bytes, w.b0, w.b1, q + i * q_stride, q_stride,
                    out + 2 * p * n + i, out + (2 * p + 1) * n + i);
  }
  // The rest: activation rows past n4 of the paired rows, and every row not paired.
  for (int64_t r = 0; r < w.rows; r++) {
    const int64_t first = r < 2 * pairs ? n4 : 0;
    if (first == n) continue;
    const Codes one{w.first_row + r * w.row_bytes, w.row_bytes, 1, w.b0, w.b1};
    for_rows(one, q + first * q_stride, q_stride, n - first, out + r * n + first, int8_row<1>,
             int8_row<2>, int8_row<3>, int8_row<4>);
  }
}

void dot_f32_avx512(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out) {
  for_rows(w, x, x_stride, n, out, f32_row<1>, f32_row<2>, f32_row<3>, f32_row<4>);
}

}  // namespace spectra::kernels::cpu::packed
#endif  // __x86_64__
