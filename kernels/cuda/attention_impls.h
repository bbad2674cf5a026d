// The CUDA attention implementations behind kernels/attention.h's `impl` (kernels/cuda/attention.cu
// dispatches to them; the arguments are checked before). Each keeps the op's contract: o and lse
// (natural log, f32) overwritten; dq, dk, dv accumulated (+=).
#pragma once
#include "core/tensor.h"

namespace spectra::kernels::cuda {

// kernels/cuda/flash_attention.cu (forward) and flash_attention_bwd.cu: bf16 or f16, head_dim 64
// or 128, Tq == Tk.
void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                             Tensor& o, Tensor& lse);
void flash_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, float scale, Tensor& dq,
                              Tensor& dk, Tensor& dv);

// kernels/cuda/cudnn_attention.cpp: cuDNN's SDPA through cudnn-frontend; bf16 or f16.
void cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                             Tensor& o, Tensor& lse);
void cudnn_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, float scale, Tensor& dq,
                              Tensor& dk, Tensor& dv);

}  // namespace spectra::kernels::cuda
