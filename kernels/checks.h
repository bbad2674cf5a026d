// The argument contract of every op, checked once: the public entry points (kernels/dispatch.cpp)
// call check_<op> before choosing a backend, so the CPU reference and the CUDA path assume valid
// arguments and only refuse what they cannot compute (the CPU computes in f32 or f64, CUDA in
// f32, bf16 or f16 with head_dim 32, 64 or 128 for attention).
//
// The contract is what the op headers state, and what either backend supports:
//  - "acc" is f64 for f64 inputs and f32 otherwise (saved statistics, parameter gradients);
//  - an output may be in its input's dtype or in acc where the header says so (matmul's c,
//    RMSNorm's gain, axpy's y), so 16-bit compute can write into f32;
//  - ids and targets are i32, the ternary γ is f32.
// Every error is an Error whose message names the op and the argument, in one of three forms:
//   "<op>: <arg> is <dtype>[<shape>], expected <what>"
//   "<op>: <arg> <dtype>[<shape>] and <arg> <dtype>[<shape>] disagree"
//   "<op>: <arg> <dtype>[<shape>] and <arg> <dtype>[<shape>] disagree: <arg> must be <dtypes>"
#pragma once
#include <vector>

#include "kernels/adamw.h"

namespace spectra::kernels {

void check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
                  const Tensor* scale);
void check_ternary_quantize(const Tensor& w, const Tensor& t, const Tensor& gamma);
void check_ternary_quantize_groups(const Tensor& w, int64_t groups, int axis,
                                   const Tensor& effective, const Tensor& gamma);
void check_rmsnorm_forward(const Tensor& x, const Tensor& g, const Tensor& y, const Tensor& rstd);
void check_rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                            const Tensor& dx, const Tensor& dg);
void check_add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& g, const Tensor& h,
                               const Tensor& y, const Tensor& rstd);
void check_add_rmsnorm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h,
                                const Tensor& g, const Tensor& rstd, const Tensor& dx,
                                const Tensor& dr, const Tensor& dg);
void check_swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out);
void check_swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                           const Tensor& dgate, const Tensor& dup);
void check_rope_forward(const Tensor& x, const Tensor& out);
void check_rope_backward(const Tensor& dout, const Tensor& dx);
void check_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                             const Tensor& lse);
void check_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv);
void check_embedding_forward(const Tensor& ids, const Tensor& table, const Tensor& out);
void check_embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dtable);
void check_cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss,
                                 const Tensor& lse);
void check_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  const Tensor& dloss, const Tensor& dlogits);
void check_cross_entropy_mean(const Tensor& loss, const Tensor& targets, const Tensor& mean,
                              const Tensor& count);
void check_cross_entropy_mean_backward(const Tensor& dmean, const Tensor& count,
                                       const Tensor& dloss);
void check_adamw_step(const std::vector<AdamWTensor>& tensors);
void check_add(const Tensor& a, const Tensor& b, const Tensor& out);
void check_axpy(const Tensor& x, const Tensor& y);
void check_scale(const Tensor& x);
void check_cast(const Tensor& src, const Tensor& dst);
void check_sum_squares(const std::vector<Tensor>& xs);

}  // namespace spectra::kernels
