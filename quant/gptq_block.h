// The device-specific steps of quant/gptq.cpp, each with a CPU reference (quant/cpu/) and a CUDA
// path (quant/cuda/), declared as kernels/op.h declares ops. The column loop's per-row math,
// shared by both, is gptq_row_block below.
//
// Layout: the matrix being quantized is stored transposed, wt[c·rows + r] = W[r, c], so a
// column of W is contiguous (coalesced on the GPU, one strided load per block on the CPU) and
// the lazy update is one matrix product on contiguous rows of wt.
#pragma once
#include "kernels/op.h"
#include "quant/grid.h"

namespace spectra::quant {

inline constexpr int64_t kBlock = 128;  // GPTQ's lazy-batch width (its `blocksize`)

// H⁻¹'s upper Cholesky factor U (H⁻¹ = UᵀU; zeros below the diagonal) from a symmetric positive
// definite h, f64 [n, n] (row-major), computed in f64 and returned in f32 on h's device.
// Returns an undefined Tensor when h is not positive definite.
SPECTRA_OP(Tensor, cholesky_inverse_upper, const Tensor& h)

// The columns [i1, i2) of every row (i2 − i1 ≤ kBlock): quantized into qt (the same layout as
// wt), the errors (W − Ŵ)/U[c, c] left in wt's rows i1..i2 for gptq_update, and each group's
// params stored at its first column into scales/zeros [groups, rows]. hinv undefined: round-
// to-nearest (no error feedback).
SPECTRA_OP(void, gptq_block, Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2,
           int64_t group_size, Grid grid, Tensor& qt, Tensor& scales, Tensor& zeros)

// The lazy update after a block: W[:, i2:] −= Err[:, i1:i2] · U[i1:i2, i2:], i.e. wt's rows
// i2.. −= U[i1:i2, i2:]ᵀ · wt's rows i1..i2.
SPECTRA_OP(void, gptq_update, Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2)

// a·b rounded once, never fused into a following add: the CPU (no FMA) and the GPU (which would
// contract a·b + c into an FMA) then compute the error feedback bit for bit alike.
SPECTRA_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// GPTQ's column loop for one row over the block [i1, i2). w, q: the row's first element in wt
// and qt; scales, zeros: the row's entry of group 0; stride: the number of rows (the distance
// between a row's consecutive columns and groups). hinv: U, row-major [cols, cols]; null for
// round-to-nearest.
SPECTRA_HD void gptq_row_block(float* w, float* q, float* scales, float* zeros, int64_t stride,
                               const float* hinv, int64_t cols, int64_t i1, int64_t i2,
                               int64_t group_size, Grid g) {
  float w1[kBlock];  // the block's columns as the error feedback updates them
  const int64_t n = i2 - i1;
  for (int64_t i = 0; i < n; i++) w1[i] = w[(i1 + i) * stride];
  for (int64_t i = 0; i < n; i++) {
    const int64_t c = i1 + i, group = c / group_size;
    GroupParams p;
    if (c % group_size == 0) {  // from W as it stood at the block's start (the reference's W)
      const int64_t len = group_size < cols - c ? group_size : cols - c;
      p = find_params(w + c * stride, len, stride, g);
      scales[group * stride] = p.scale;
      zeros[group * stride] = p.zero;
    } else {
      p = {scales[group * stride], zeros[group * stride]};
    }
    const float qv = dequantize(quantize_code(w1[i], p, g), p);
    q[c * stride] = qv;
    if (!hinv) continue;
    const float* u = hinv + c * cols + i1;  // U[c, i1:]
    const float err = (w1[i] - qv) / u[i];
    for (int64_t j = i + 1; j < n; j++) w1[j] -= mul_rn(err, u[j]);
    w[c * stride] = err;
  }
}

}  // namespace spectra::quant
