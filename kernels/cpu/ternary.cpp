// The TriLM quantizer: γ = eps + mean|W| (accumulated in f64), trits via ternary_trit().
#include "kernels/cpu/common.h"
#include "kernels/ternary.h"

namespace spectra::kernels::cpu {

void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  if (w.shape() != t.shape())
    throw Error(fmt::format("ternary_quantize: w {} and t {} disagree", w.str(), t.str()));
  check_dtype("ternary_quantize", gamma, "gamma", DType::f32);
  dispatch_float("ternary_quantize", w.dtype(), [&](auto wt) {
    using W = decltype(wt);
    const W* x = w.data<W>();
    const int64_t n = w.numel();
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += std::abs(double(x[i]));
    const float g = float(double(eps) + sum / double(std::max<int64_t>(n, 1)));
    gamma.data<float>()[0] = g;
    dispatch_float("ternary_quantize", t.dtype(), [&](auto tt) {
      using T = decltype(tt);
      T* out = t.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = T(ternary_trit(float(x[i]), g));
    });
  });
}

}  // namespace spectra::kernels::cpu
