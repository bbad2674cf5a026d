// Rotary position embedding, Hugging Face "rotate half" convention on the full head:
// for i < Dh/2, with inv_freq = theta^(-2i/Dh) and angle = pos · inv_freq (both in f32, as HF
// computes them), c = cos(angle), s = sin(angle):
//   out[i]        = x[i] · c − x[i + Dh/2] · s
//   out[i + Dh/2] = x[i + Dh/2] · c + x[i] · s
// x, out: [B, T, H, Dh]; the position of token t is pos0 + t.
#pragma once
#include <cmath>

#include "core/hd.h"
#include "kernels/op.h"

namespace spectra::kernels {

SPECTRA_HD void rope_cos_sin(int64_t pos, int64_t i, int64_t head_dim, float theta, float& c,
                             float& s) {
  float inv_freq = 1.0f / powf(theta, float(2 * i) / float(head_dim));
  float angle = float(pos) * inv_freq;
  c = cosf(angle);
  s = sinf(angle);
}

SPECTRA_OP(void, rope_forward, const Tensor& x, int64_t pos0, float theta, Tensor& out)
// The inverse rotation: dx += R(-angle) · dout.
SPECTRA_OP(void, rope_backward, const Tensor& dout, int64_t pos0, float theta, Tensor& dx)

}  // namespace spectra::kernels
