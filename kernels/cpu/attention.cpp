// Causal attention, one (batch, head) pair at a time: scores, softmax and the weighted sum of
// values per query. The backward pass recomputes each query's probabilities from the saved lse:
//   p = exp(s − lse), dv += pᵀ·dO, dp = dO·vᵀ, ds = p∘(dp − rowsum(dO∘O)),
//   dq += scale·ds·k, dk += scale·dsᵀ·q.
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

namespace {
struct Dims {
  int64_t b, tq, tk, h, dh;
  // Element (t, d) of head `hi` in batch `bi` of a [B, T, H, Dh] tensor with T rows.
  int64_t at(int64_t bi, int64_t t, int64_t hi, int64_t T) const { return ((bi * T + t) * h + hi) * dh; }
};

Dims check(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || k.shape() != v.shape() || q.size(0) != k.size(0) ||
      q.size(2) != k.size(2) || q.size(3) != k.size(3) || q.size(1) > k.size(1) ||
      q.dtype() != k.dtype() || q.dtype() != v.dtype())
    throw Error(fmt::format("{}: q {}, k {}, v {} must be [B, T, H, Dh] with Tq <= Tk", op,
                            q.str(), k.str(), v.str()));
  return {q.size(0), q.size(1), k.size(1), q.size(2), q.size(3)};
}
}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& o,
                       Tensor& lse) {
  Dims s = check("attention_forward", q, k, v);
  check_same("attention_forward", q, "q", o, "o");
  if (lse.numel() != s.b * s.h * s.tq || lse.dtype() != acc_dtype(q.dtype()))
    throw Error(fmt::format("attention_forward: lse {} must be [B, H, Tq] in {}", lse.str(),
                            dtype_name(acc_dtype(q.dtype()))));
  dispatch_float("attention_forward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>();
    T *op = o.data<T>(), *lp = lse.data<T>();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < s.b; bi++)
      for (int64_t hi = 0; hi < s.h; hi++) {
        std::vector<T> p(static_cast<size_t>(s.tk));
        for (int64_t i = 0; i < s.tq; i++) {
          const int64_t last = s.tk - s.tq + i;  // the query's position: keys 0..last
          const T* qi = qp + s.at(bi, i, hi, s.tq);
          T m = -INFINITY;
          for (int64_t j = 0; j <= last; j++) {
            const T* kj = kp + s.at(bi, j, hi, s.tk);
            T dot = 0;
            for (int64_t d = 0; d < s.dh; d++) dot += qi[d] * kj[d];
            p[j] = dot * T(scale);
            m = std::max(m, p[j]);
          }
          T l = 0;
          for (int64_t j = 0; j <= last; j++) l += p[j] = std::exp(p[j] - m);
          T* oi = op + s.at(bi, i, hi, s.tq);
          for (int64_t d = 0; d < s.dh; d++) oi[d] = 0;
          for (int64_t j = 0; j <= last; j++) {
            const T* vj = vp + s.at(bi, j, hi, s.tk);
            for (int64_t d = 0; d < s.dh; d++) oi[d] += p[j] * vj[d];
          }
          for (int64_t d = 0; d < s.dh; d++) oi[d] /= l;
          lp[(bi * s.h + hi) * s.tq + i] = m + std::log(l);
        }
      }
  });
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv) {
  Dims s = check("attention_backward", q, k, v);
  if (s.tq != s.tk) throw Error("attention_backward: needs Tq == Tk");
  check_same("attention_backward", dout, "dout", q, "q");
  check_same("attention_backward", o, "o", q, "q");
  check_same("attention_backward", dq, "dq", q, "q");
  check_same("attention_backward", dk, "dk", k, "k");
  check_same("attention_backward", dv, "dv", v, "v");
  dispatch_float("attention_backward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>(), *op = o.data<T>();
    const T *dop = dout.data<T>(), *lp = lse.data<T>();
    T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
    const int64_t t = s.tq;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < s.b; bi++)
      for (int64_t hi = 0; hi < s.h; hi++) {
        for (int64_t i = 0; i < t; i++) {
          const T *qi = qp + s.at(bi, i, hi, t), *doi = dop + s.at(bi, i, hi, t);
          const T* oi = op + s.at(bi, i, hi, t);
          const T lse_i = lp[(bi * s.h + hi) * t + i];
          T di = 0;  // rowsum(dO∘O)
          for (int64_t d = 0; d < s.dh; d++) di += doi[d] * oi[d];
          T* dqi = dqp + s.at(bi, i, hi, t);
          for (int64_t j = 0; j <= i; j++) {
            const T *kj = kp + s.at(bi, j, hi, t), *vj = vp + s.at(bi, j, hi, t);
            T dot = 0, dp = 0;
            for (int64_t d = 0; d < s.dh; d++) {
              dot += qi[d] * kj[d];
              dp += doi[d] * vj[d];
            }
            T pj = std::exp(dot * T(scale) - lse_i);
            T ds = pj * (dp - di) * T(scale);
            T *dkj = dkp + s.at(bi, j, hi, t), *dvj = dvp + s.at(bi, j, hi, t);
            for (int64_t d = 0; d < s.dh; d++) {
              dqi[d] += ds * kj[d];
              dkj[d] += ds * qi[d];
              dvj[d] += pj * doi[d];
            }
          }
        }
      }
  });
}

}  // namespace spectra::kernels::cpu
