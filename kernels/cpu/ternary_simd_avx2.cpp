// The packed ternary inner loops with AVX2 + FMA (kernels/cpu/ternary_simd.h). This file is
// compiled with -mavx2 -mfma (CMakeLists.txt) and called only on CPUs that have them.
//
// A 64-byte code block is read as two 32-byte halves. Half h holds columns 32h + j + 64s in bits
// 2s..2s+1 of byte j, so shifting it right by 2s and masking with 3 gives the codes of 32
// consecutive columns, 64s + 32h .. 64s + 32h + 31: one unpacked vector per s, each used for up
// to four activation rows before the next is made (the weights are read once per four rows).
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/ternary_simd.h"

namespace spectra::kernels::cpu::packed {

namespace {

int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// NI activation rows (1..4) against one weight row. vpmaddubsw multiplies the unsigned codes
// (0..2) by the signed activations and adds pairs into i16 (|sum| <= 2·2·127); the four shifts'
// i16 sums (<= 2032) go to i32 through vpmaddwd with ones.
template <int NI>
void int8_row(const uint8_t* row, int64_t b0, int64_t b1, const int8_t* q, int64_t q_stride,
              int32_t* out) {
  const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256i acc[NI];
  for (int k = 0; k < NI; k++) acc[k] = _mm256_setzero_si256();
  for (int64_t b = b0; b < b1; b++)
    for (int h = 0; h < 2; h++) {
      const __m256i raw =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 64 + h * 32));
      const __m256i c0 = _mm256_and_si256(raw, mask);
      const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(raw, 2), mask);
      const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
      const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(raw, 6), mask);
      for (int k = 0; k < NI; k++) {
        const int8_t* a = q + k * q_stride + b * 256 + h * 32;
        auto load = [a](int s) {
          return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 64 * s));
        };
        const __m256i p = _mm256_add_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(c0, load(0)), _mm256_maddubs_epi16(c1, load(1))),
            _mm256_add_epi16(_mm256_maddubs_epi16(c2, load(2)), _mm256_maddubs_epi16(c3, load(3))));
        acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(p, ones));
      }
    }
  for (int k = 0; k < NI; k++) out[k] = hsum(acc[k]);
}

// vpermps looks up the low 3 bits of each index: byte >> 2s holds code s in bits 0-1, so a table
// of trit(i & 3) turns codes into -1, 0, +1 in one instruction. CH independent accumulators per
// activation row keep the FMA latency hidden when there are few rows.
template <int NI>
void f32_row(const uint8_t* row, int64_t b0, int64_t b1, const float* x, int64_t x_stride,
             float* out) {
  constexpr int CH = NI == 1 ? 4 : 2;
  const __m256 table = _mm256_setr_ps(-1, 0, 1, 0, -1, 0, 1, 0);
  __m256 acc[NI][CH];
  for (int k = 0; k < NI; k++)
    for (int c = 0; c < CH; c++) acc[k][c] = _mm256_setzero_ps();
  for (int64_t b = b0; b < b1; b++)
    for (int j = 0; j < 64; j += 8) {
      const __m256i v =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + b * 64 + j)));
      __m256 t[4];
      t[0] = _mm256_permutevar8x32_ps(table, v);
      t[1] = _mm256_permutevar8x32_ps(table, _mm256_srli_epi32(v, 2));
      t[2] = _mm256_permutevar8x32_ps(table, _mm256_srli_epi32(v, 4));
      t[3] = _mm256_permutevar8x32_ps(table, _mm256_srli_epi32(v, 6));
      for (int k = 0; k < NI; k++) {
        const float* a = x + k * x_stride + b * 256 + j;
        for (int s = 0; s < 4; s++)
          acc[k][s % CH] = _mm256_fmadd_ps(t[s], _mm256_loadu_ps(a + 64 * s), acc[k][s % CH]);
      }
    }
  for (int k = 0; k < NI; k++) {
    __m256 s = acc[k][0];
    for (int c = 1; c < CH; c++) s = _mm256_add_ps(s, acc[k][c]);
    out[k] = hsum(s);
  }
}

// int8 × int8 (the int8 head): vpmaddubsw needs one unsigned operand, so |w| meets q with w's
// sign (vpsignb); |w|, |q| <= 127 keep each i16 pair sum below 2^15.
template <int NI>
void s8_row(const uint8_t* row, int64_t b0, int64_t b1, const int8_t* q, int64_t q_stride,
            int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[NI];
  for (int k = 0; k < NI; k++) acc[k] = _mm256_setzero_si256();
  for (int64_t c = b0 * 64; c < b1 * 64; c += 32) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c));
    const __m256i aw = _mm256_abs_epi8(w);
    for (int k = 0; k < NI; k++) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k * q_stride + c));
      acc[k] = _mm256_add_epi32(
          acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones));
    }
  }
  for (int k = 0; k < NI; k++) out[k] = hsum(acc[k]);
}

}  // namespace

void dot_s8_avx2(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  for_rows(w, q, q_stride, n, out, s8_row<1>, s8_row<2>, s8_row<3>, s8_row<4>);
}

void dot_int8_avx2(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  for_rows(w, q, q_stride, n, out, int8_row<1>, int8_row<2>, int8_row<3>, int8_row<4>);
}

void dot_f32_avx2(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out) {
  for_rows(w, x, x_stride, n, out, f32_row<1>, f32_row<2>, f32_row<3>, f32_row<4>);
}

}  // namespace spectra::kernels::cpu::packed
#endif  // __x86_64__
