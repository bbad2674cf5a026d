// The packed ternary matmul on the GPU (kernels/cuda/ternary_packed.cu): the same layout and the
// same two activation modes as the CPU's kernels::packed_matmul (kernels/ternary_packed.h).
// Nothing calls it yet: on a GPU, generate and eval use the latent weights until scripts/gpu-check
// has passed (its steps `packed` and `packedbench` check it against the CPU and cuBLAS).
//
//   PackedTernary p = kernels::pack_ternary(w, 1e-5f, 2, 1);      // on the CPU
//   PackedTernary d = kernels::to_device(p, Device::cuda());     // codes and γ on the GPU
//   kernels::packed_matmul_cuda(d, x, y, Activations::int8);     // x, y on the GPU
//
// Results against the CPU: int8 mode equal bit for bit (exact integer sums; γ and the activation
// scale applied in the same f64 order, no fused multiply-add); exact mode within f32 rounding of
// the sums (per-scale-block f32 sums in another order, combined in f64 as on the CPU).
// Built only with the CUDA backend (declared everywhere, defined only there).
#pragma once
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/ternary_packed.h"

namespace spectra::kernels {

// The same weight with codes and γ copied to `d` (the other fields as they are).
PackedTernary to_device(const PackedTernary& p, Device d);

// y = x · (γ·T)ᵀ on the GPU: w's codes and γ on the GPU, x f32 or bf16 [n, cols] (leading
// dimensions flattened; bf16 is widened to f32 first), y f32 [n, rows], overwritten. Runs on
// spectra's stream; scratch (the padded or quantized activations) comes from the caching
// allocator.
void packed_matmul_cuda(const PackedTernary& w, const Tensor& x, Tensor& y, Activations mode);

// ZeRO-3's steps (dist/sharded_weights.h) on device memory, for its GPU path (wired, off by
// default until scripts/gpu-check's step `zero3` passes; its step `packed` checks these against
// the CPU's):
//  - ternary_row_abs_sums_cuda: Σ|w| in f64 over each row's scale block(s), rows [r0, r1) of
//    p's matrix (w: those rows, f32), into sums [(r1 - r0) · blocks] f64, blocks = p.groups
//    along columns, else 1; the host adds them in row order as kernels::ternary_abs_sums does;
//  - pack_ternary_rows_cuda: those rows' codes into p.codes with p.gamma (both on the GPU), as
//    kernels::pack_ternary_rows writes them;
//  - unpack_ternary_quantized_cuda: the compute copy (trits, or γ·T with several scales) in
//    out's dtype (f32, bf16, f16), as kernels::unpack_ternary_quantized.
void ternary_row_abs_sums_cuda(const Tensor& w, int64_t r0, int64_t r1, const PackedTernary& p,
                               Tensor& sums);
void pack_ternary_rows_cuda(const Tensor& w, int64_t r0, int64_t r1, PackedTernary& p);
void unpack_ternary_quantized_cuda(const PackedTernary& p, Tensor& out, Tensor& gamma);

}  // namespace spectra::kernels
