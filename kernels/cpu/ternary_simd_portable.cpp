// The packed ternary inner loops in plain C++ (kernels/cpu/ternary_simd.h): any CPU, and the
// variant SPECTRA_CPU_ISA=portable forces.
#include "kernels/cpu/ternary_simd.h"

namespace spectra::kernels::cpu::packed {

// Byte j of a 64-byte code block holds columns j, j+64, j+128, j+192 in bits 0-1, 2-3, 4-5, 6-7.

void dot_int8_portable(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  for (int64_t r = 0; r < w.rows; r++) {
    const uint8_t* row = w.first_row + r * w.row_bytes;
    for (int64_t i = 0; i < n; i++) {
      const int8_t* qi = q + i * q_stride;
      int32_t sum = 0;
      for (int64_t b = w.b0; b < w.b1; b++) {
        const uint8_t* block = row + b * 64;
        const int8_t* qb = qi + b * 256;
        for (int j = 0; j < 64; j++) {
          const int byte = block[j];
          sum += (byte & 3) * qb[j] + (byte >> 2 & 3) * qb[j + 64] + (byte >> 4 & 3) * qb[j + 128] +
                 (byte >> 6) * qb[j + 192];
        }
      }
      out[r * n + i] = sum;
    }
  }
}

void dot_f32_portable(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out) {
  static constexpr float kTrit[4] = {-1.f, 0.f, 1.f, 0.f};  // code 3 never occurs
  for (int64_t r = 0; r < w.rows; r++) {
    const uint8_t* row = w.first_row + r * w.row_bytes;
    for (int64_t i = 0; i < n; i++) {
      const float* xi = x + i * x_stride;
      float sum[4] = {0, 0, 0, 0};  // one per quarter of a block: four independent chains
      for (int64_t b = w.b0; b < w.b1; b++) {
        const uint8_t* block = row + b * 64;
        const float* xb = xi + b * 256;
        for (int j = 0; j < 64; j++) {
          const int byte = block[j];
          sum[0] += kTrit[byte & 3] * xb[j];
          sum[1] += kTrit[byte >> 2 & 3] * xb[j + 64];
          sum[2] += kTrit[byte >> 4 & 3] * xb[j + 128];
          sum[3] += kTrit[byte >> 6] * xb[j + 192];
        }
      }
      out[r * n + i] = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    }
  }
}

void dot_s8_portable(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out) {
  for (int64_t r = 0; r < w.rows; r++) {
    const int8_t* row = reinterpret_cast<const int8_t*>(w.first_row + r * w.row_bytes);
    for (int64_t i = 0; i < n; i++) {
      const int8_t* qi = q + i * q_stride;
      int32_t sum = 0;
      for (int64_t c = w.b0 * 64; c < w.b1 * 64; c++) sum += row[c] * qi[c];
      out[r * n + i] = sum;
    }
  }
}

}  // namespace spectra::kernels::cpu::packed
