// The public entry point of every op: checks that the tensors share a device and forwards to
// the CPU reference or the CUDA path.
#include <initializer_list>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/ternary.h"

namespace spectra::kernels {

namespace {
// True for CUDA, false for CPU; throws if the defined tensors are on different devices.
bool on_cuda(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first)
      first = t;
    else if (!(t->device() == first->device()))
      throw Error(
          fmt::format("{}: tensors on different devices ({} and {})", op, first->str(), t->str()));
  }
  return first && first->is_cuda();
}
}  // namespace

#ifdef SPECTRA_WITH_CUDA
#define DISPATCH(op, tensors, ...) \
  return on_cuda(#op, tensors) ? cuda::op(__VA_ARGS__) : cpu::op(__VA_ARGS__)
#else
#define DISPATCH(op, tensors, ...)                                                  \
  if (on_cuda(#op, tensors)) user_error("{}: spectra was built without CUDA", #op); \
  return cpu::op(__VA_ARGS__)
#endif
#define T_(...) \
  { __VA_ARGS__ }

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta,
            const Tensor* scale) {
  DISPATCH(matmul, T_(&a, &b, &c, scale), a, ta, b, tb, c, alpha, beta, scale);
}
void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  DISPATCH(ternary_quantize, T_(&w, &t, &gamma), w, eps, t, gamma);
}
void ternary_quantize_groups(const Tensor& w, float eps, int64_t groups, int axis,
                             Tensor& effective, Tensor& gamma) {
  DISPATCH(ternary_quantize_groups, T_(&w, &effective, &gamma), w, eps, groups, axis, effective,
           gamma);
}
void rmsnorm_forward(const Tensor& x, const Tensor& g, float eps, Tensor& y, Tensor& rstd) {
  DISPATCH(rmsnorm_forward, T_(&x, &g, &y, &rstd), x, g, eps, y, rstd);
}
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                      Tensor& dx, Tensor& dg) {
  DISPATCH(rmsnorm_backward, T_(&dy, &x, &g, &rstd, &dx, &dg), dy, x, g, rstd, dx, dg);
}
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  DISPATCH(swiglu_forward, T_(&gate, &up, &out), gate, up, out);
}
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  DISPATCH(swiglu_backward, T_(&dout, &gate, &up, &dgate, &dup), dout, gate, up, dgate, dup);
}
void rope_forward(const Tensor& x, int64_t pos0, float theta, Tensor& out) {
  DISPATCH(rope_forward, T_(&x, &out), x, pos0, theta, out);
}
void rope_backward(const Tensor& dout, int64_t pos0, float theta, Tensor& dx) {
  DISPATCH(rope_backward, T_(&dout, &dx), dout, pos0, theta, dx);
}
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& o,
                       Tensor& lse) {
  DISPATCH(attention_forward, T_(&q, &k, &v, &o, &lse), q, k, v, scale, o, lse);
}
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv) {
  DISPATCH(attention_backward, T_(&dout, &q, &k, &v, &o, &lse, &dq, &dk, &dv), dout, q, k, v, o,
           lse, scale, dq, dk, dv);
}
void embedding_forward(const Tensor& ids, const Tensor& table, int64_t off, Tensor& out) {
  DISPATCH(embedding_forward, T_(&ids, &table, &out), ids, table, off, out);
}
void embedding_backward(const Tensor& ids, const Tensor& dout, int64_t off, Tensor& dtable) {
  DISPATCH(embedding_backward, T_(&ids, &dout, &dtable), ids, dout, off, dtable);
}
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                           Tensor& loss, Tensor& lse) {
  DISPATCH(cross_entropy_forward, T_(&logits, &targets, &loss, &lse), logits, targets, vocab_offset,
           loss, lse);
}
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                            const Tensor& lse, const Tensor& dloss, Tensor& dlogits) {
  DISPATCH(cross_entropy_backward, T_(&logits, &targets, &lse, &dloss, &dlogits), logits, targets,
           vocab_offset, lse, dloss, dlogits);
}
void adamw_step(std::vector<AdamWTensor>& ts, const AdamWHyper& h) {
  const Tensor* first = ts.empty() ? nullptr : &ts[0].param;
  DISPATCH(adamw_step, T_(first), ts, h);
}
void add(const Tensor& a, const Tensor& b, Tensor& out) {
  DISPATCH(add, T_(&a, &b, &out), a, b, out);
}
void axpy(float alpha, const Tensor& x, Tensor& y) { DISPATCH(axpy, T_(&x, &y), alpha, x, y); }
void scale(Tensor& x, float alpha) { DISPATCH(scale, T_(&x), x, alpha); }
void cast(const Tensor& src, Tensor& dst) { DISPATCH(cast, T_(&src, &dst), src, dst); }
double sum_squares(const std::vector<Tensor>& xs, bool* nonfinite) {
  const Tensor* first = xs.empty() ? nullptr : &xs[0];
  DISPATCH(sum_squares, T_(first), xs, nonfinite);
}

}  // namespace spectra::kernels
