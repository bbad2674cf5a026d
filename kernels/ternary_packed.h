// A packed ternary weight: a [rows, cols] TriLM matrix as 2-bit codes plus one γ per scale block,
// holding exactly the trits and γ of the training quantizer (kernels/ternary.h). Inference, the
// ZeRO-3 all-gather and any packed file use this one packing.
//
//   PackedTernary p = kernels::pack_ternary(w, 1e-5f, /*groups=*/2, /*axis=*/1);  // w f32 [R, C]
//   Tensor eff = kernels::unpack_ternary(p);        // f32 [R, C]: γ·T, the effective weight
//   kernels::packed_matmul(p, x, y, Activations::exact);  // x f32 [n, C] -> y f32 [n, R] =
//   x·(γ·T)ᵀ float g = p.gamma_at(r, c);                     // the scale of weight (r, c)
//
// Layout (stable: files and collectives carry it byte for byte).
//  - code = trit + 1: 0 is -1, 1 is 0, 2 is +1; 3 is never written.
//  - Each row is padded to cols_padded = a multiple of kBlockCols = 256 columns; padding columns
//    hold code 1 (trit 0), so a kernel may run over whole blocks and they add nothing.
//  - codes: u8 [rows, row_bytes], row_bytes = cols_padded / 4, rows contiguous. A row is
//    cols_padded / 256 blocks of kBlockBytes = 64 bytes; column c lives in block c / 256 at
//    q = c % 256, in byte q % 64 of the block, bits 2·(q / 64) .. 2·(q / 64) + 1. So byte j of a
//    block holds columns j, j+64, j+128, j+192 in bits 0-1, 2-3, 4-5, 6-7: a 32-byte AVX2 load of
//    half a block, shifted right by 0, 2, 4, 6 and masked with 3, gives four vectors of 32
//    consecutive columns' codes each.
//  - gamma: f32 [groups], split exactly as kernels::ternary_quantize_groups splits: axis 0 gives
//    blocks of span = rows / groups whole rows, axis 1 blocks of span = cols / groups whole
//    columns. Column blocks need not align with the 256-column code blocks (TriLM 1.1B's
//    896-wide tensor-parallel shards), so a kernel over axis-1 scales splits a code block where a
//    scale block ends (block_of_col below).
//  - Both tensors are on the CPU; .to(Device) moves them as they are.
//
// What is not kept: the sign of a zero. The quantizer's effective weight for a small negative
// latent weight is -0.0; unpacking gives +0.0. They compare equal and any product sums the same.
//
// packed_matmul runs hand-written inner loops for the CPU's instruction set (kernels/cpu_isa.h:
// AVX-512 VNNI, AVX2 or portable C++), threads over weight rows and activation rows;
// packed_matmul_reference is the simple f64 loop they are checked against.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace spectra::kernels {

struct PackedTernary {
  static constexpr int64_t kBlockCols = 256;  // columns per code block
  static constexpr int64_t kBlockBytes = 64;  // bytes per code block (4 codes a byte)

  int64_t rows = 0, cols = 0;
  int64_t groups = 1;  // scale blocks
  int axis = 0;        // 0: blocks of rows; 1: blocks of columns
  Tensor codes;        // u8 [rows, row_bytes()]
  Tensor gamma;        // f32 [groups]

  int64_t cols_padded() const { return (cols + kBlockCols - 1) / kBlockCols * kBlockCols; }
  int64_t row_bytes() const { return cols_padded() / 4; }
  // Rows (axis 0) or columns (axis 1) per scale block.
  int64_t span() const { return (axis == 0 ? rows : cols) / groups; }
  int64_t block_of_row(int64_t r) const { return axis == 0 ? r / span() : 0; }
  int64_t block_of_col(int64_t c) const { return axis == 1 ? c / span() : 0; }
  // γ of weight (r, c): one division and a load.
  float gamma_at(int64_t r, int64_t c) const {
    return gamma.data<float>()[axis == 0 ? r / span() : c / span()];
  }

  // Byte and shift of weight (r, c)'s code, per the layout above.
  int64_t byte_of(int64_t r, int64_t c) const {
    return r * row_bytes() + c / kBlockCols * kBlockBytes + c % kBlockCols % kBlockBytes;
  }
  static int shift_of(int64_t c) { return int(2 * (c % kBlockCols / kBlockBytes)); }
  int code_at(int64_t r, int64_t c) const {
    return (codes.data<uint8_t>()[byte_of(r, c)] >> shift_of(c)) & 3;
  }
  int trit_at(int64_t r, int64_t c) const { return code_at(r, c) - 1; }

  // Bytes held: codes (with padding) and γ.
  size_t nbytes() const { return codes.nbytes() + gamma.nbytes(); }
  double bits_per_weight() const {
    return rows * cols == 0 ? 0.0 : 8.0 * double(nbytes()) / double(rows * cols);
  }
};

// Packs latent weights w (CPU, 2-D [rows, cols], f32; f64 also accepted) with `groups` scale
// blocks along `axis`. γ and the trits are computed exactly as kernels::cpu::
// ternary_quantize_groups does (the same fixed-order f64 sum, the same ternary_trit on the f32
// γ), so codes and γ equal the training quantizer's bit for bit. groups must divide the size of
// w along axis.
PackedTernary pack_ternary(const Tensor& w, float eps, int64_t groups, int axis);

// ZeRO-3 (dist/sharded_weights.h) packs a matrix whose rows are spread over ranks in two halves:
//  - ternary_abs_sums adds Σ|w| per scale block over rows [r0, r1) (x: those rows' latent
//    weights, f32, row-major) into sums [p.groups], in f64; every rank's sums added give each
//    γ = ternary_gamma(sum, rows·cols / groups, eps), which goes into p.gamma;
//  - pack_ternary_rows writes rows [r0, r1)'s codes into p.codes with that γ, as pack_ternary
//    writes them.
// p describes the whole matrix (rows, cols, groups, axis; codes [rows, row_bytes()]).
void ternary_abs_sums(const float* x, int64_t r0, int64_t r1, const PackedTernary& p, double* sums);
void pack_ternary_rows(const float* x, int64_t r0, int64_t r1, PackedTernary& p);

// The effective weight γ·T as f32 [rows, cols] (equal to ternary_quantize_groups' f32
// `effective`, up to the sign of zeros).
Tensor unpack_ternary(const PackedTernary& p);
// Rows [r0, r1) of it into out (f32 [r1 - r0, cols], row after row).
void unpack_ternary_rows(const PackedTernary& p, int64_t r0, int64_t r1, float* out);

// The compute copy a TriLM projection trains with, from its codes: what ternary_quantize writes
// with one scale (the trits, γ in gamma) or ternary_quantize_groups with several (γ·T), into out
// (f32 [rows, cols] on the CPU) and gamma (f32 [groups]). Zeros come out +0.
void unpack_ternary_quantized(const PackedTernary& p, Tensor& out, Tensor& gamma);

// How activations meet the packed weights.
//  - exact: f32 activations; y equals the f64 product within f32 rounding (the order of the
//    f32 sums is the instruction set's loop's for up to 15 activation rows; from 16 rows on, tiles
//    of weight rows are unpacked to f32 γ·T and multiplied by BLAS). Log-likelihoods do not move.
//  - int8: each activation row quantized to int8 with its absmax (quantize_int8), integer dot
//    products with the trits, then y = f32(f64(scale_i) · Σ_g f64(γ_g)·f64(Σ trit·q over scale
//    block g)): exact integer sums, so every instruction set gives the same bits. Faster; the
//    outputs move by the activations' rounding (docs/evaluation.md measures by how much).
enum class Activations : uint8_t { exact = 0, int8 = 1 };
const char* activations_name(Activations a);
// "exact" or "int8"; anything else is a UserError naming `what` (the flag or key).
Activations parse_activations(const std::string& s, const std::string& what);

// y = x · (γ·T)ᵀ: x f32 [n, cols] (leading dimensions flattened), y f32 [n, rows], overwritten,
// both on the CPU. The result does not depend on the number of threads.
void packed_matmul(const PackedTernary& w, const Tensor& x, Tensor& y, Activations mode);
// The same for several weights of one input width and scale layout against one x (q, k and v;
// gate and up): the activations are prepared (padded, quantized) once. ys[k] = x · (γ·T_k)ᵀ.
void packed_matmuls(const std::vector<const PackedTernary*>& ws, const Tensor& x,
                    const std::vector<Tensor*>& ys, Activations mode);

// One activation row to int8: amax = max |x_c|; scale = amax / 127; q_c = x_c·(127 / amax)
// rounded to nearest (ties to even) and clamped to ±127, all in f32. amax = 0 gives scale 0 and
// q = 0; a non-finite amax gives scale NaN (so the outputs are NaN, as they would be in f32).
void quantize_int8(const float* x, int64_t cols, int8_t* q, float* scale);

// A float matrix as int8 rows, for the int8 mode's LM head (most of the bytes a token reads in a
// small TriLM when the head stays f32): each row quantized like an activation row
// (quantize_int8: q = round(w·127 / amax_row), scale = amax_row / 127), padded with zeros to a
// multiple of 64 columns.
struct Int8Matrix {
  int64_t rows = 0, cols = 0;
  Tensor q;      // u8 [rows, cols_padded()]: int8 values
  Tensor scale;  // f32 [rows]
  int64_t cols_padded() const { return (cols + 63) / 64 * 64; }
  size_t nbytes() const { return q.nbytes() + scale.nbytes(); }
};
Int8Matrix quantize_rows_int8(const Tensor& w);  // w f32 [rows, cols] on the CPU
// y = x·Ŵᵀ with int8 activations: y[i, r] = f32(f64(scale_x,i)·(f64(scale_w,r)·Σ_c q_w·q_x)),
// exact integer sums (every instruction set gives the same bits). x f32 [n, cols], y [n, rows].
void int8_matmul(const Int8Matrix& w, const Tensor& x, Tensor& y);

// The reference for the `exact` mode: x f32 [n, cols] (leading dimensions flattened), y f32
// [n, rows], overwritten. Order: for each output (i, r) and each scale block that row r meets
// (one for axis 0; `groups` for axis 1, in column order), s_g = Σ trit·x over the block's
// columns in increasing column order, in f64; y = f32(Σ_g f64(γ_g)·s_g). Each trit·x is exact in
// f64, so y is the f64 product rounded once (apart from the f64 sum's own rounding). Threads over
// rows (OpenMP); the result does not depend on the thread count.
void packed_matmul_reference(const PackedTernary& w, const Tensor& x, Tensor& y);

}  // namespace spectra::kernels
