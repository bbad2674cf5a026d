// Softmax cross-entropy per row (lse in f64), and its gradient recomputed from lse.
#include "kernels/cpu/common.h"
#include "kernels/cross_entropy.h"

namespace spectra::kernels::cpu {

namespace {
void check(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& a, const Tensor& b) {
  check_dtype(op, targets, "targets", DType::i32);
  const int64_t n = rows_of(logits);
  if (targets.numel() != n || a.numel() != n || b.numel() != n || a.dtype() != acc_dtype(logits.dtype()) ||
      b.dtype() != a.dtype())
    throw Error(fmt::format("{}: logits {}, targets {}, {} and {} disagree", op, logits.str(),
                            targets.str(), a.str(), b.str()));
  const int32_t* t = targets.data<int32_t>();
  for (int64_t r = 0; r < n; r++)
    if (t[r] >= logits.size(-1))
      throw Error(fmt::format("{}: target {} at row {} is outside the vocabulary of {}", op, t[r], r,
                              logits.size(-1)));
}
}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& loss, Tensor& lse) {
  check("cross_entropy_forward", logits, targets, loss, lse);
  const int64_t n = rows_of(logits), v = logits.size(-1);
  dispatch_float("cross_entropy_forward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* zp = logits.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T *lp = loss.data<T>(), *sp = lse.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      const T* row = zp + r * v;
      double m = -INFINITY, sum = 0;
      for (int64_t j = 0; j < v; j++) m = std::max(m, double(row[j]));
      for (int64_t j = 0; j < v; j++) sum += std::exp(double(row[j]) - m);
      double l = m + std::log(sum);
      sp[r] = T(l);
      lp[r] = tp[r] < 0 ? T(0) : T(l - double(row[tp[r]]));
    }
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& dloss, Tensor& dlogits) {
  check("cross_entropy_backward", logits, targets, lse, dloss);
  check_same("cross_entropy_backward", logits, "logits", dlogits, "dlogits");
  const int64_t n = rows_of(logits), v = logits.size(-1);
  dispatch_float("cross_entropy_backward", logits.dtype(), [&](auto z) {
    using T = decltype(z);
    const T *zp = logits.data<T>(), *sp = lse.data<T>(), *dl = dloss.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    T* gp = dlogits.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
      if (tp[r] < 0) continue;
      const T *row = zp + r * v;
      T* g = gp + r * v;
      for (int64_t j = 0; j < v; j++) g[j] += dl[r] * std::exp(row[j] - sp[r]);
      g[tp[r]] -= dl[r];
    }
  });
}

}  // namespace spectra::kernels::cpu
