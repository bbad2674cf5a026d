// Every op is declared three times with one signature: the public entry point in
// spectra::kernels (kernels/dispatch.cpp picks the backend from the inputs' device), the CPU
// reference in spectra::kernels::cpu (kernels/cpu/<op>.cpp) and the CUDA path in
// spectra::kernels::cuda (kernels/cuda/<op>.cu). SPECTRA_OP declares all three.
//
// Conventions shared by every op:
//  - Shapes: activations are [N, d] with leading dimensions flattened (a [B, T, d] tensor is
//    accepted as [B*T, d]); attention and RoPE take [B, T, H, Dh].
//  - Forward ops overwrite their outputs. Backward ops ACCUMULATE (+=) into every gradient
//    output, so callers zero a gradient once and several uses of a tensor add up.
//  - dtypes: the CPU reference computes in f32 or f64 (all float inputs of one call share the
//    dtype). The CUDA path takes f32, bf16 or f16 activations and accumulates in f32.
//    "acc" below means f64 for f64 inputs and f32 otherwise: saved statistics (rstd, lse) and
//    parameter gradients use it.
//  - Shape, dtype and device mismatches throw an Error naming the op and the argument: the
//    public entry point checks the tensors' device (kernels/dispatch.h) and the arguments
//    (kernels/checks.h) once, before choosing a backend; the backends assume valid arguments and
//    refuse only what they cannot compute (dtypes, CUDA attention's head_dim).
#pragma once
#include "core/tensor.h"

#define SPECTRA_OP(ret, name, ...) \
  ret name(__VA_ARGS__);           \
  namespace cpu {                  \
  ret name(__VA_ARGS__);           \
  }                                \
  namespace cuda {                 \
  ret name(__VA_ARGS__);           \
  }
