// The TriLM quantizer: γ = eps + mean|W| (summed in f64, fixed order), trits via ternary_trit().
#include "kernels/ternary.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  SPECTRA_CHECK(w.shape() == t.shape(), "ternary_quantize: w {} and t {} disagree", desc(w),
                desc(t));
  check_vector("ternary_quantize", gamma, "gamma", 1, DType::f32);
  const int64_t n = w.numel();
  dispatch_float("ternary_quantize", w.dtype(), [&](auto wz) {
    using W = decltype(wz);
    const W* x = w.data<W>();
    const double sum = ordered_sum(n, [&](int64_t i) { return std::abs(double(x[i])); });
    // γ is rounded to f32 once; the trits divide by that same γ, so γ·T is the weight used.
    const float g = float(double(eps) + sum / double(std::max<int64_t>(n, 1)));
    gamma.data<float>()[0] = g;
    dispatch_storage("ternary_quantize", t.dtype(), [&](auto tz) {
      using T = decltype(tz);
      T* out = t.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = narrow<T>(ternary_trit(x[i], W(g)));
    });
  });
}

}  // namespace spectra::kernels::cpu
