// The TriLM quantizer: γ = eps + mean|W| (summed in f64, fixed order), trits via ternary_trit().
#include "kernels/ternary.h"
#include "kernels/cpu/common.h"

namespace spectra::kernels::cpu {

void ternary_quantize(const Tensor& w, float eps, Tensor& t, Tensor& gamma) {
  const int64_t n = w.numel();
  dispatch_float("ternary_quantize", w.dtype(), [&](auto wz) {
    using W = decltype(wz);
    const W* x = w.data<W>();
    const double sum = ordered_sum(n, [&](int64_t i) { return std::abs(double(x[i])); });
    const float g = ternary_gamma(sum, n, eps);
    gamma.data<float>()[0] = g;
    dispatch_storage("ternary_quantize", t.dtype(), [&](auto tz) {
      using T = decltype(tz);
      T* out = t.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = narrow<T>(ternary_trit(x[i], W(g)));
    });
  });
}

namespace {
// Group g of a [rows, cols] matrix split into `groups` blocks along `axis` is the sub-matrix
// [r0, r0 + gr) x [c0, c0 + gc); its element k (row-major within the group) is
// w[r0 + k / gc, c0 + k % gc].
struct Groups {
  int64_t cols, gr, gc;
  int axis;
  Groups(const Tensor& w, int64_t groups, int axis)
      : cols(w.size(1)),
        gr(axis == 0 ? w.size(0) / groups : w.size(0)),
        gc(axis == 1 ? w.size(1) / groups : w.size(1)),
        axis(axis) {}
  int64_t at(int64_t g, int64_t k) const {
    const int64_t r0 = axis == 0 ? g * gr : 0, c0 = axis == 1 ? g * gc : 0;
    return (r0 + k / gc) * cols + c0 + k % gc;
  }
  int64_t size() const { return gr * gc; }
};
}  // namespace

void ternary_group_gammas(const Tensor& w, float eps, int64_t groups, int axis, float* gamma) {
  const Groups s(w, groups, axis);
  dispatch_float("ternary_group_gammas", w.dtype(), [&](auto wz) {
    using W = decltype(wz);
    const W* x = w.data<W>();
    for (int64_t g = 0; g < groups; g++) {
      const double sum =
          ordered_sum(s.size(), [&](int64_t k) { return std::abs(double(x[s.at(g, k)])); });
      gamma[g] = ternary_gamma(sum, s.size(), eps);
    }
  });
}

void ternary_quantize_groups(const Tensor& w, float eps, int64_t groups, int axis,
                             Tensor& effective, Tensor& gamma) {
  const Groups s(w, groups, axis);
  ternary_group_gammas(w, eps, groups, axis, gamma.data<float>());
  dispatch_float("ternary_quantize_groups", w.dtype(), [&](auto wz) {
    using W = decltype(wz);
    const W* x = w.data<W>();
    for (int64_t g = 0; g < groups; g++) {
      const float gamma_g = gamma.data<float>()[g];
      dispatch_storage("ternary_quantize_groups", effective.dtype(), [&](auto tz) {
        using T = decltype(tz);
        T* out = effective.data<T>();
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < s.size(); k++) {
          const int64_t i = s.at(g, k);
          out[i] = narrow<T>(double(gamma_g) * double(ternary_trit(x[i], W(gamma_g))));
        }
      });
    }
  });
}

}  // namespace spectra::kernels::cpu
