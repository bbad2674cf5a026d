// The public entry point of every op: checks that the tensors share a device, checks the
// arguments against the op's contract (kernels/checks.h), and forwards to the CPU reference or
// the CUDA path. The backends assume valid arguments.
#include "kernels/dispatch.h"

#include <vector>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/checks.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

namespace spectra::kernels {

bool on_cuda(const char* op, std::span<const Tensor* const> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first)
      first = t;
    else if (!(t->device() == first->device()))
      throw Error(
          fmt::format("{}: tensors on different devices ({} and {})", op, first->str(), t->str()));
  }
  const bool gpu = first && first->is_cuda();
#ifndef SPECTRA_WITH_CUDA
  if (gpu) user_error("{}: spectra was built without CUDA", op);
#endif
  return gpu;
}

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta,
            const Tensor* scale) {
  const bool gpu = on_cuda("matmul", {&a, &b, &c, scale});
  check_matmul(a, ta, b, tb, c, scale);
  SPECTRA_BACKEND(gpu, matmul, a, ta, b, tb, c, alpha, beta, scale);
}
void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  const bool gpu = on_cuda("ternary_quantize", {&w, &t, &gamma});
  check_ternary_quantize(w, t, gamma);
  SPECTRA_BACKEND(gpu, ternary_quantize, w, eps, t, gamma);
}
void ternary_quantize_groups(const Tensor& w, float eps, int64_t groups, int axis,
                             Tensor& effective, Tensor& gamma) {
  const bool gpu = on_cuda("ternary_quantize_groups", {&w, &effective, &gamma});
  check_ternary_quantize_groups(w, groups, axis, effective, gamma);
  SPECTRA_BACKEND(gpu, ternary_quantize_groups, w, eps, groups, axis, effective, gamma);
}
void rmsnorm_forward(const Tensor& x, const Tensor& g, float eps, Tensor& y, Tensor& rstd) {
  const bool gpu = on_cuda("rmsnorm_forward", {&x, &g, &y, &rstd});
  check_rmsnorm_forward(x, g, y, rstd);
  SPECTRA_BACKEND(gpu, rmsnorm_forward, x, g, eps, y, rstd);
}
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                      Tensor& dx, Tensor& dg) {
  const bool gpu = on_cuda("rmsnorm_backward", {&dy, &x, &g, &rstd, &dx, &dg});
  check_rmsnorm_backward(dy, x, g, rstd, dx, dg);
  SPECTRA_BACKEND(gpu, rmsnorm_backward, dy, x, g, rstd, dx, dg);
}
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const bool gpu = on_cuda("swiglu_forward", {&gate, &up, &out});
  check_swiglu_forward(gate, up, out);
  SPECTRA_BACKEND(gpu, swiglu_forward, gate, up, out);
}
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  const bool gpu = on_cuda("swiglu_backward", {&dout, &gate, &up, &dgate, &dup});
  check_swiglu_backward(dout, gate, up, dgate, dup);
  SPECTRA_BACKEND(gpu, swiglu_backward, dout, gate, up, dgate, dup);
}
void rope_forward(const Tensor& x, int64_t pos0, float theta, Tensor& out) {
  const bool gpu = on_cuda("rope_forward", {&x, &out});
  check_rope_forward(x, out);
  SPECTRA_BACKEND(gpu, rope_forward, x, pos0, theta, out);
}
void rope_backward(const Tensor& dout, int64_t pos0, float theta, Tensor& dx) {
  const bool gpu = on_cuda("rope_backward", {&dout, &dx});
  check_rope_backward(dout, dx);
  SPECTRA_BACKEND(gpu, rope_backward, dout, pos0, theta, dx);
}
void add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& g, float eps, Tensor& h,
                         Tensor& y, Tensor& rstd) {
  const bool gpu = on_cuda("add_rmsnorm_forward", {&x, &r, &g, &h, &y, &rstd});
  check_add_rmsnorm_forward(x, r, g, h, y, rstd);
  SPECTRA_BACKEND(gpu, add_rmsnorm_forward, x, r, g, eps, h, y, rstd);
}
void add_rmsnorm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& g,
                          const Tensor& rstd, Tensor& dx, Tensor& dr, Tensor& dg) {
  const bool gpu = on_cuda("add_rmsnorm_backward", {&dy, &dh, &h, &g, &rstd, &dx, &dr, &dg});
  check_add_rmsnorm_backward(dy, dh, h, g, rstd, dx, dr, dg);
  SPECTRA_BACKEND(gpu, add_rmsnorm_backward, dy, dh, h, g, rstd, dx, dr, dg);
}
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& o,
                       Tensor& lse, AttentionImpl impl) {
  const bool gpu = on_cuda("attention_forward", {&q, &k, &v, &o, &lse});
  check_attention_forward(q, k, v, o, lse);
  SPECTRA_BACKEND(gpu, attention_forward, q, k, v, scale, o, lse, impl);
}
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv, AttentionImpl impl) {
  const bool gpu = on_cuda("attention_backward", {&dout, &q, &k, &v, &o, &lse, &dq, &dk, &dv});
  check_attention_backward(dout, q, k, v, o, lse, dq, dk, dv);
  SPECTRA_BACKEND(gpu, attention_backward, dout, q, k, v, o, lse, scale, dq, dk, dv, impl);
}
void embedding_forward(const Tensor& ids, const Tensor& table, int64_t off, Tensor& out) {
  const bool gpu = on_cuda("embedding_forward", {&ids, &table, &out});
  check_embedding_forward(ids, table, out);
  SPECTRA_BACKEND(gpu, embedding_forward, ids, table, off, out);
}
void embedding_backward(const Tensor& ids, const Tensor& dout, int64_t off, Tensor& dtable) {
  const bool gpu = on_cuda("embedding_backward", {&ids, &dout, &dtable});
  check_embedding_backward(ids, dout, dtable);
  SPECTRA_BACKEND(gpu, embedding_backward, ids, dout, off, dtable);
}
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                           Tensor& loss, Tensor& lse) {
  const bool gpu = on_cuda("cross_entropy_forward", {&logits, &targets, &loss, &lse});
  check_cross_entropy_forward(logits, targets, loss, lse);
  SPECTRA_BACKEND(gpu, cross_entropy_forward, logits, targets, vocab_offset, loss, lse);
}
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                            const Tensor& lse, const Tensor& dloss, Tensor& dlogits) {
  const bool gpu = on_cuda("cross_entropy_backward", {&logits, &targets, &lse, &dloss, &dlogits});
  check_cross_entropy_backward(logits, targets, lse, dloss, dlogits);
  SPECTRA_BACKEND(gpu, cross_entropy_backward, logits, targets, vocab_offset, lse, dloss, dlogits);
}
void cross_entropy_mean(const Tensor& loss, const Tensor& targets, Tensor& mean, Tensor& count) {
  const bool gpu = on_cuda("cross_entropy_mean", {&loss, &targets, &mean, &count});
  check_cross_entropy_mean(loss, targets, mean, count);
  SPECTRA_BACKEND(gpu, cross_entropy_mean, loss, targets, mean, count);
}
void cross_entropy_mean_backward(const Tensor& dmean, const Tensor& count, Tensor& dloss) {
  const bool gpu = on_cuda("cross_entropy_mean_backward", {&dmean, &count, &dloss});
  check_cross_entropy_mean_backward(dmean, count, dloss);
  SPECTRA_BACKEND(gpu, cross_entropy_mean_backward, dmean, count, dloss);
}
void adamw_step(std::vector<AdamWTensor>& ts, const AdamWHyper& h) {
  std::vector<const Tensor*> all;  // every tensor of every entry shares the device
  for (const AdamWTensor& t : ts)
    for (const Tensor* x : {&t.param, &t.grad, &t.m, &t.v, &t.compute}) all.push_back(x);
  const bool gpu = on_cuda("adamw_step", all);
  check_adamw_step(ts);
  SPECTRA_BACKEND(gpu, adamw_step, ts, h);
}
void add(const Tensor& a, const Tensor& b, Tensor& out) {
  const bool gpu = on_cuda("add", {&a, &b, &out});
  check_add(a, b, out);
  SPECTRA_BACKEND(gpu, add, a, b, out);
}
void axpy(float alpha, const Tensor& x, Tensor& y) {
  const bool gpu = on_cuda("axpy", {&x, &y});
  check_axpy(x, y);
  SPECTRA_BACKEND(gpu, axpy, alpha, x, y);
}
void scale(Tensor& x, float alpha) {
  const bool gpu = on_cuda("scale", {&x});
  check_scale(x);
  SPECTRA_BACKEND(gpu, scale, x, alpha);
}
void cast(const Tensor& src, Tensor& dst) {
  const bool gpu = on_cuda("cast", {&src, &dst});
  check_cast(src, dst);
  SPECTRA_BACKEND(gpu, cast, src, dst);
}
double sum_squares(const std::vector<Tensor>& xs, bool* nonfinite) {
  std::vector<const Tensor*> all;
  for (const Tensor& x : xs) all.push_back(&x);
  const bool gpu = on_cuda("sum_squares", all);
  check_sum_squares(xs);
  SPECTRA_BACKEND(gpu, sum_squares, xs, nonfinite);
}

}  // namespace spectra::kernels
