// Softmax cross-entropy per row (lse summed in f64), and its gradient recomputed from lse.
#include "kernels/cross_entropy.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

namespace {
// The target's column in this shard, or -1 when another shard (or nobody) holds it.
int64_t local_target(int32_t t, int64_t offset, int64_t v) {
  return t >= offset && t < offset + v ? t - offset : -1;
}
}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                           Tensor& loss, Tensor& lse) {
  const int64_t n = rows_of(logits), v = logits.size(-1);
  dispatch_float("cross_entropy_forward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* zp = logits.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T *lp = loss.data<T>(), *sp = lse.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T* row = zp + r * v;
      T m = -INFINITY;
      for (int64_t j = 0; j < v; j++) m = std::max(m, row[j]);
      double sum = 0;
      for (int64_t j = 0; j < v; j++) sum += std::exp(double(row[j]) - double(m));
      const double l = double(m) + std::log(sum);
      sp[r] = T(l);
      const int64_t t = local_target(tp[r], vocab_offset, v);
      lp[r] = tp[r] < 0 ? T(0) : t < 0 ? T(l) : T(l - double(row[t]));
    }
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t vocab_offset,
                            const Tensor& lse, const Tensor& dloss, Tensor& dlogits) {
  const int64_t n = rows_of(logits), v = logits.size(-1);
  dispatch_float("cross_entropy_backward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *zp = logits.data<T>(), *sp = lse.data<T>(), *dl = dloss.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T* gp = dlogits.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      if (tp[r] < 0) continue;  // ignored: no gradient
      const T* row = zp + r * v;
      const T s = sp[r], d = dl[r];
      T* g = gp + r * v;
      for (int64_t j = 0; j < v; j++) g[j] += d * std::exp(row[j] - s);
      if (const int64_t t = local_target(tp[r], vocab_offset, v); t >= 0) g[t] -= d;
    }
  });
}

void cross_entropy_mean(const Tensor& loss, const Tensor& targets, Tensor& mean, Tensor& count) {
  dispatch_float("cross_entropy_mean", loss.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* lp = loss.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    double sum = 0;
    int64_t valid = 0;
    for (int64_t i = 0; i < loss.numel(); i++) {
      sum += double(lp[i]);
      valid += tp[i] >= 0;
    }
    const double c = double(std::max<int64_t>(valid, 1));
    mean.data<T>()[0] = T(sum / c);
    count.data<T>()[0] = T(c);
  });
}

void cross_entropy_mean_backward(const Tensor& dmean, const Tensor& count, Tensor& dloss) {
  dispatch_float("cross_entropy_mean_backward", dloss.dtype(), [&](auto z) {
    using T = decltype(z);
    const T g = dmean.data<T>()[0] / count.data<T>()[0];
    T* d = dloss.data<T>();
    for (int64_t i = 0; i < dloss.numel(); i++) d[i] = g;
  });
}

}  // namespace spectra::kernels::cpu
