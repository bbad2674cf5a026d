// The inner loops of the packed ternary matmul (kernels/ternary_packed.h), one set per
// instruction set: ternary_simd_portable.cpp (plain C++), ternary_simd_avx2.cpp and
// ternary_simd_avx512.cpp (compiled with those instruction sets; called only after run-time
// detection, kernels/cpu_isa.h). This header holds plain types only: the SIMD files include
// nothing else of spectra's, so no inline function of the program is ever compiled there with
// instructions another CPU may lack.
//
// A call covers whole 256-column code blocks [b0, b1) of `rows` consecutive weight rows and n
// activation rows. Activations are indexed by absolute column (block b reads columns 256·b ..
// 256·b + 255 of each activation row) and must be readable, zero-padded, up to column 256·b1.
// Results are plain sums; the caller applies γ and the activation scales.
#pragma once
#include <cstdint>

namespace spectra::kernels::cpu::packed {

struct Codes {
  const uint8_t* first_row;  // codes of the first weight row (PackedTernary layout)
  int64_t row_bytes;         // bytes from one row to the next
  int64_t rows;
  int64_t b0, b1;  // code blocks
};

// int8 mode: out[r·n + i] = Σ_c code(r, c)·q[i·q_stride + c] with the raw codes 0..2 (the caller
// subtracts Σ_c q to get Σ trit·q). Exact integer sums: every variant gives the same.
using DotInt8 = void (*)(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n,
                         int32_t* out);
// exact mode: out[r·n + i] = Σ_c trit(r, c)·x[i·x_stride + c] in f32 (the order of the sum is
// the variant's: results agree within float rounding).
using DotF32 = void (*)(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out);

void dot_int8_portable(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
void dot_f32_portable(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out);
#if defined(__x86_64__)
void dot_int8_avx2(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
void dot_f32_avx2(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out);
void dot_int8_avx512(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
void dot_f32_avx512(const Codes& w, const float* x, int64_t x_stride, int64_t n, float* out);
#endif

}  // namespace spectra::kernels::cpu::packed

namespace spectra::kernels::cpu::packed {
namespace {  // internal to each SIMD file: its instantiations must not be shared across files

// Runs a variant's row kernels over every weight row, activation rows four at a time and then
// the rest: rowN(row codes, b0, b1, first activation row, stride, N outputs).
template <typename T, typename R, typename Row1, typename Row2, typename Row3, typename Row4>
void for_rows(const Codes& w, const T* a, int64_t stride, int64_t n, R* out, Row1 r1, Row2 r2,
              Row3 r3, Row4 r4) {
  for (int64_t r = 0; r < w.rows; r++) {
    const uint8_t* row = w.first_row + r * w.row_bytes;
    R* o = out + r * n;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) r4(row, w.b0, w.b1, a + i * stride, stride, o + i);
    if (n - i == 3) r3(row, w.b0, w.b1, a + i * stride, stride, o + i);
    if (n - i == 2) r2(row, w.b0, w.b1, a + i * stride, stride, o + i);
    if (n - i == 1) r1(row, w.b0, w.b1, a + i * stride, stride, o + i);
  }
}

}  // namespace
}  // namespace spectra::kernels::cpu::packed

namespace spectra::kernels::cpu::packed {

// int8 rows (kernels/int8_matmul.h): out[r·n + i] = Σ_c w(r, c)·q[i·q_stride + c] over the
// 64-column chunks [b0, b1) of int8 weight rows (Codes::first_row holds them as bytes).
using DotS8 = void (*)(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
void dot_s8_portable(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
#if defined(__x86_64__)
void dot_s8_avx2(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
void dot_s8_avx512(const Codes& w, const int8_t* q, int64_t q_stride, int64_t n, int32_t* out);
#endif

}  // namespace spectra::kernels::cpu::packed
