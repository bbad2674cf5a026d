// Causal attention, one (batch, head) pair per OpenMP task, in tiles of kTile queries so that the
// score matrices are BLAS products (the heads are strided views: leading dimension H·Dh) and a
// tile only computes the keys its queries can see. Per tile:
//   forward:  S = scale·Q·Kᵀ, P = softmax(S) under the causal mask, O = P·V, lse per query;
//   backward: P = exp(S − lse) recomputed, dV += Pᵀ·dO, dP = dO·Vᵀ,
//             dS = scale·P∘(dP − rowsum(dO∘O)), dQ += dS·K, dK += dSᵀ·Q.
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

namespace {
constexpr int64_t kTile = 64;

struct Dims {
  int64_t b, tq, tk, h, dh;
  int64_t ld() const { return h * dh; }  // between rows of one head
  // Row 0 of head hi in batch bi of a [B, T, H, Dh] tensor.
  int64_t head(int64_t bi, int64_t hi, int64_t T) const { return (bi * T * h + hi) * dh; }
};

Dims dims(const Tensor& q, const Tensor& k) {
  return {q.size(0), q.size(1), k.size(1), q.size(2), q.size(3)};
}
}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& o,
                       Tensor& lse, AttentionImpl) {
  const Dims s = dims(q, k);
  dispatch_float("attention_forward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    const int64_t ld = s.ld();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < s.b; bi++)
      for (int64_t hi = 0; hi < s.h; hi++) {
        const T* Q = q.data<T>() + s.head(bi, hi, s.tq);
        const T *K = k.data<T>() + s.head(bi, hi, s.tk), *V = v.data<T>() + s.head(bi, hi, s.tk);
        T* O = o.data<T>() + s.head(bi, hi, s.tq);
        T* L = lse.data<T>() + (bi * s.h + hi) * s.tq;
        std::vector<T> p(size_t(std::min(kTile, s.tq) * s.tk));
        for (int64_t i0 = 0; i0 < s.tq; i0 += kTile) {
          const int64_t rows = std::min(kTile, s.tq - i0);
          const int64_t keys = s.tk - s.tq + i0 + rows;  // what the tile's last query sees
          gemm(false, true, rows, keys, s.dh, T(scale), Q + i0 * ld, ld, K, ld, T(0), p.data(),
               keys);
          for (int64_t r = 0; r < rows; r++) {
            T* pr = p.data() + r * keys;
            const int64_t seen = s.tk - s.tq + i0 + r + 1;  // keys 0..seen-1
            T m = -INFINITY, l = 0;
            for (int64_t j = 0; j < seen; j++) m = std::max(m, pr[j]);
            for (int64_t j = 0; j < seen; j++) l += pr[j] = std::exp(pr[j] - m);
            for (int64_t j = 0; j < seen; j++) pr[j] /= l;
            for (int64_t j = seen; j < keys; j++) pr[j] = 0;
            L[i0 + r] = m + std::log(l);
          }
          gemm(false, false, rows, s.dh, keys, T(1), p.data(), keys, V, ld, T(0), O + i0 * ld, ld);
        }
      }
  });
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv, AttentionImpl) {
  const Dims s = dims(q, k);  // Tq == Tk
  dispatch_float("attention_backward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    const int64_t ld = s.ld(), t = s.tq;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bi = 0; bi < s.b; bi++)
      for (int64_t hi = 0; hi < s.h; hi++) {
        const int64_t off = s.head(bi, hi, t);
        const T *Q = q.data<T>() + off, *K = k.data<T>() + off, *V = v.data<T>() + off;
        const T *O = o.data<T>() + off, *dO = dout.data<T>() + off;
        const T* L = lse.data<T>() + (bi * s.h + hi) * t;
        T *dQ = dq.data<T>() + off, *dK = dk.data<T>() + off, *dV = dv.data<T>() + off;
        const size_t tile = size_t(std::min(kTile, t) * t);
        std::vector<T> p(tile), ds(tile);
        for (int64_t i0 = 0; i0 < t; i0 += kTile) {
          const int64_t rows = std::min(kTile, t - i0), keys = i0 + rows;
          gemm(false, true, rows, keys, s.dh, T(scale), Q + i0 * ld, ld, K, ld, T(0), p.data(),
               keys);
          gemm(false, true, rows, keys, s.dh, T(1), dO + i0 * ld, ld, V, ld, T(0), ds.data(), keys);
          for (int64_t r = 0; r < rows; r++) {
            T *pr = p.data() + r * keys, *dr = ds.data() + r * keys;
            const T* dor = dO + (i0 + r) * ld;
            const T* orow = O + (i0 + r) * ld;
            T di = 0;  // rowsum(dO∘O) = Σ_j p_j·dp_j
            for (int64_t d = 0; d < s.dh; d++) di += dor[d] * orow[d];
            const int64_t seen = i0 + r + 1;
            for (int64_t j = 0; j < seen; j++) {
              pr[j] = std::exp(pr[j] - L[i0 + r]);
              dr[j] = pr[j] * (dr[j] - di) * T(scale);
            }
            for (int64_t j = seen; j < keys; j++) pr[j] = dr[j] = 0;
          }
          gemm(true, false, keys, s.dh, rows, T(1), p.data(), keys, dO + i0 * ld, ld, T(1), dV, ld);
          gemm(false, false, rows, s.dh, keys, T(1), ds.data(), keys, K, ld, T(1), dQ + i0 * ld,
               ld);
          gemm(true, false, keys, s.dh, rows, T(1), ds.data(), keys, Q + i0 * ld, ld, T(1), dK, ld);
        }
      }
  });
}

}  // namespace spectra::kernels::cpu
