// GPTQ (Frantar et al. 2022) and round-to-nearest quantization of one weight matrix.
//
//   quant::Hessian h(in, device);
//   h.add(x);                                    // every calibration input x [N, in] of the layer
//   quant::QuantizedWeight q = quant::quantize(w, &h.mean(), {.grid = {.bits = 4}});
//   double e = quant::layer_error(w, q.weight, h.mean());   // mean over tokens of ‖(W − Ŵ)x‖²
//
// GPTQ follows the reference implementation (gptq.py, `fasterquant`) step for step:
//  1. H = mean of x·xᵀ over the calibration tokens (GPTQ's 2/n·XXᵀ up to a factor, which no
//     step depends on: damping is relative);
//  2. dead columns (H[c, c] = 0: an input that was always zero) get H[c, c] = 1 and W[:, c] = 0;
//  3. with act_order, columns are taken in order of decreasing H[c, c];
//  4. H += λ·mean(diag H)·I, then U = the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU);
//  5. columns are quantized left to right in blocks of 128: each column's error, divided by
//     U[c, c], is spread over the block's later columns at once (err·U[c, c+1:]) and over the
//     columns after the block in one matrix product per block (the "lazy batch" update);
//  6. a group's scale and zero are found when its first column is reached, from the weights as
//     they stand at the start of that column's block (quant/grid.h).
// Round-to-nearest uses the same grid and groups without step 5's error feedback.
// Host work is O(in²) memory (steps 2-4); the Cholesky factorizations (f64, LAPACK or
// cuSOLVER), the column loop and the block updates run on W's device.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "quant/grid.h"

namespace spectra::quant {

enum class Method : uint8_t { gptq = 0, rtn = 1 };
inline const char* method_name(Method m) { return m == Method::gptq ? "gptq" : "rtn"; }

struct Options {
  Method method = Method::gptq;
  Grid grid;
  int64_t group_size = 128;  // input columns per group; 0: one group per row
  bool act_order = false;    // GPTQ's desc_act: columns by decreasing H[c, c]
  double damp = 0.01;        // λ, relative to mean(diag H)
};

// Calibration statistics of one layer's inputs: Σ xᵀx over the rows x of its inputs (f32,
// accumulated by one matrix product per batch on the inputs' device).
class Hessian {
 public:
  Hessian(int64_t in, Device device);
  void add(const Tensor& x);  // [N, in], any float dtype
  int64_t tokens() const { return tokens_; }
  Tensor mean() const;  // Σ xᵀx / tokens, f32 [in, in]

 private:
  Tensor sum_;
  int64_t tokens_ = 0;
};

// W ≈ Ŵ with Ŵ[r, c] = scales[g, r]·(code[r, c] − zeros[g, r]), g = g_idx[c], codes in
// [0, 2^bits − 1]. scales and zeros are listed in the order groups were quantized (with
// act_order, group g holds the columns quantized g-th), as GPTQ's packed format stores them.
struct QuantizedWeight {
  Tensor weight;     // Ŵ, f32 [out, in]
  Tensor scales;     // f32 [groups, out], each an f16 value
  Tensor zeros;      // f32 [groups, out], integers
  Tensor g_idx;      // i32 [in]
  int64_t dead = 0;  // input columns that were zero in every calibration input
  double damp = 0;   // the λ used (GPTQ raises it when H + λ·mean(diag H) is not definite)
};

// w: f32 [out, in] on the CPU or a GPU. h: the layer's Hessian (Hessian::mean), required for
// GPTQ, ignored by round-to-nearest. Throws Error for shapes that do not fit (the callers
// validate user input first).
QuantizedWeight quantize(const Tensor& w, const Tensor* h, const Options& options);

// Mean over the calibration tokens of ‖(W − Ŵ)x‖² = tr((W − Ŵ)·H·(W − Ŵ)ᵀ), in f64.
double layer_error(const Tensor& w, const Tensor& w_hat, const Tensor& h);

// The integer codes of a quantized weight, from Ŵ, scales, zeros and g_idx (all on the CPU):
// exact because Ŵ = scale·(code − zero) holds exactly in f32. i32 [out, in]. Throws a UserError
// naming `what` if some weight is not on its group's grid (the file was altered).
Tensor recover_codes(const Tensor& w_hat, const Tensor& scales, const Tensor& zeros,
                     const Tensor& g_idx, Grid grid, const std::string& what);

}  // namespace spectra::quant
