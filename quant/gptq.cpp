#include "quant/gptq.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "quant/gptq_block.h"

namespace spectra::quant {

// ---- Backend dispatch (kernels/dispatch.h's rule: the tensors' device decides, and they all
// share it) -----------------------------------------------------------------------------------

Tensor cholesky_inverse_upper(const Tensor& h) {
  SPECTRA_BACKEND(kernels::on_cuda("cholesky_inverse_upper", {&h}), cholesky_inverse_upper, h);
}
void gptq_block(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2, int64_t group_size,
                Grid grid, Tensor& qt, Tensor& scales, Tensor& zeros) {
  const bool gpu = kernels::on_cuda("gptq_block", {&wt, &hinv, &qt, &scales, &zeros});
  SPECTRA_BACKEND(gpu, gptq_block, wt, hinv, i1, i2, group_size, grid, qt, scales, zeros);
}
void gptq_update(Tensor& wt, const Tensor& hinv, int64_t i1, int64_t i2) {
  SPECTRA_BACKEND(kernels::on_cuda("gptq_update", {&wt, &hinv}), gptq_update, wt, hinv, i1, i2);
}

// ---- Calibration statistics ------------------------------------------------------------------

Hessian::Hessian(int64_t in, Device device) : sum_(Tensor::zeros({in, in}, DType::f32, device)) {}

void Hessian::add(const Tensor& x) {
  const int64_t in = sum_.size(0);
  SPECTRA_CHECK(x.numel() % in == 0, "Hessian::add: {} rows are not of width {}", x.str(), in);
  Tensor x32 = x.dtype() == DType::f32 ? x : x.to(DType::f32);
  x32 = x32.view({x.numel() / in, in});
  kernels::matmul(x32, true, x32, false, sum_, 1.f, 1.f, nullptr);  // sum += xᵀx
  tokens_ += x32.size(0);
}

Tensor Hessian::mean() const {
  SPECTRA_CHECK(tokens_ > 0, "Hessian::mean: no inputs were added");
  Tensor m = Tensor::empty(sum_.shape(), DType::f32, sum_.device());
  m.copy_from(sum_);
  kernels::scale(m, float(1.0 / double(tokens_)));
  return m;
}

// ---- One matrix ------------------------------------------------------------------------------

namespace {

// GPTQ's step 2 on the host, in f64: dead columns get H[c, c] = 1 and zeros in w. Returns λ
// (step 4's damping).
double prepare(Tensor& h, float* w, int64_t rows, double damp, int64_t& dead) {
  const int64_t n = h.size(0);
  double* p = h.data<double>();
  dead = 0;
  for (int64_t c = 0; c < n; c++) {
    if (p[c * n + c] != 0) continue;
    p[c * n + c] = 1;
    for (int64_t r = 0; r < rows; r++) w[r * n + c] = 0;
    dead++;
  }
  double mean = 0;
  for (int64_t c = 0; c < n; c++) mean += p[c * n + c];
  mean /= double(n);
  return damp * mean;
}

}  // namespace

QuantizedWeight quantize(const Tensor& w, const Tensor* h, const Options& o) {
  SPECTRA_CHECK(w.dim() == 2 && w.dtype() == DType::f32,
                "quantize: w is {}, expected f32 [out, in]", w.str());
  const int64_t rows = w.size(0), cols = w.size(1);
  const int64_t gs = o.group_size <= 0 ? cols : o.group_size;
  SPECTRA_CHECK(cols % gs == 0, "quantize: group size {} does not divide {} columns", gs, cols);
  SPECTRA_CHECK(o.grid.bits >= 2 && o.grid.bits <= 8, "quantize: {} bits", o.grid.bits);
  const bool gptq = o.method == Method::gptq;
  SPECTRA_CHECK(!gptq || (h && h->shape() == Shape({cols, cols})),
                "quantize: GPTQ needs H [{}, {}], got {}", cols, cols, h ? h->str() : "none");
  const Device dev = w.device();

  Tensor wh = Tensor::empty(w.shape(), DType::f32);  // W on the host, to prepare (a copy)
  wh.copy_from(w);
  QuantizedWeight out;
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  Tensor hinv;
  if (gptq) {
    Tensor hd = h->to(Device::cpu()).to(DType::f64);
    double lambda = prepare(hd, wh.data<float>(), rows, o.damp, out.dead);
    const double* d = hd.data<double>();
    if (o.act_order)
      std::stable_sort(perm.begin(), perm.end(),
                       [&](int64_t a, int64_t b) { return d[a * cols + a] > d[b * cols + b]; });
    // H in the quantization order, damped.
    Tensor hp = Tensor::empty(hd.shape(), DType::f64);
    double* q = hp.data<double>();
    for (int64_t i = 0; i < cols; i++)
      for (int64_t j = 0; j < cols; j++) q[i * cols + j] = d[perm[i] * cols + perm[j]];
    // When H + λI is not definite, raise λ until it is (GPTQModel raises it too; here it doubles).
    for (int attempt = 0;; attempt++) {
      Tensor damped = Tensor::empty(hp.shape(), DType::f64);
      damped.copy_from(hp);
      for (int64_t c = 0; c < cols; c++) damped.data<double>()[c * cols + c] += lambda;
      hinv = cholesky_inverse_upper(damped.to(dev));
      if (hinv.defined()) break;
      if (attempt == 20)
        throw Error(fmt::format("GPTQ: H is not positive definite even with damping {}", lambda));
      lambda *= 2;
    }
    out.damp = lambda;
  }
  // W in the quantization order, transposed: wt[c] is column perm[c].
  Tensor wt_h = Tensor::empty({cols, rows}, DType::f32);
  {
    const float* a = wh.data<float>();
    float* b = wt_h.data<float>();
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < cols; c++) b[c * rows + r] = a[r * cols + perm[c]];
  }
  Tensor wt = wt_h.to(dev);
  Tensor qt = Tensor::empty({cols, rows}, DType::f32, dev);
  out.scales = Tensor::empty({cols / gs, rows}, DType::f32, dev);
  out.zeros = Tensor::empty({cols / gs, rows}, DType::f32, dev);
  for (int64_t i1 = 0; i1 < cols; i1 += kBlock) {
    const int64_t i2 = std::min(cols, i1 + kBlock);
    gptq_block(wt, hinv, i1, i2, gs, o.grid, qt, out.scales, out.zeros);
    if (gptq && i2 < cols) gptq_update(wt, hinv, i1, i2);
  }
  // Back to W's layout and column order.
  Tensor qh = qt.to(Device::cpu());
  Tensor w_hat = Tensor::empty({rows, cols}, DType::f32);
  out.g_idx = Tensor::empty({cols}, DType::i32);
  const float* a = qh.data<float>();
  float* b = w_hat.data<float>();
  for (int64_t c = 0; c < cols; c++) {
    out.g_idx.data<int32_t>()[perm[c]] = int32_t(c / gs);
    for (int64_t r = 0; r < rows; r++) b[r * cols + perm[c]] = a[c * rows + r];
  }
  out.weight = w_hat.to(dev);
  return out;
}

double layer_error(const Tensor& w, const Tensor& w_hat, const Tensor& h) {
  const int64_t rows = w.size(0), cols = w.size(1);
  Tensor delta = Tensor::empty(w.shape(), DType::f32, w.device());
  delta.copy_from(w);
  kernels::axpy(-1.f, w_hat, delta);
  Tensor dh = Tensor::empty(w.shape(), DType::f32, w.device());
  kernels::matmul(delta, false, h, false, dh, 1.f, 0.f, nullptr);  // Δ·H
  Tensor a = delta.to(Device::cpu()), b = dh.to(Device::cpu());
  double sum = 0;
  const float *pa = a.data<float>(), *pb = b.data<float>();
  for (int64_t i = 0; i < rows * cols; i++) sum += double(pa[i]) * double(pb[i]);
  return sum;
}

Tensor recover_codes(const Tensor& w_hat, const Tensor& scales, const Tensor& zeros,
                     const Tensor& g_idx, Grid grid, const std::string& what) {
  const int64_t rows = w_hat.size(0), cols = w_hat.size(1), groups = scales.size(0);
  Tensor codes = Tensor::empty({rows, cols}, DType::i32);
  const float *w = w_hat.data<float>(), *s = scales.data<float>(), *z = zeros.data<float>();
  const int32_t* g = g_idx.data<int32_t>();
  int32_t* out = codes.data<int32_t>();
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      const int64_t k = g[c];
      if (k < 0 || k >= groups) user_error("{}: g_idx[{}] = {} is not a group", what, c, k);
      const GroupParams p{s[k * rows + r], z[k * rows + r]};
      const float code = rintf(w[r * cols + c] / p.scale) + p.zero;
      if (code < 0 || code > float(grid.maxq()) || dequantize(code, p) != w[r * cols + c])
        user_error("{}: weight [{}, {}] = {} is not on its group's {}-bit grid (scale {}, zero {})",
                   what, r, c, w[r * cols + c], grid.bits, p.scale, p.zero);
      out[r * cols + c] = int32_t(code);
    }
  return codes;
}

}  // namespace spectra::quant
