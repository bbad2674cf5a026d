// The packed ternary weight's CPU reference: packing with the training quantizer's exact γ and
// trits, unpacking, and the `exact` f32-activation matmul in simple loops
// (kernels/ternary_packed.h).
#include "kernels/ternary_packed.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/ternary.h"

namespace spectra::kernels {

namespace {

// All padding columns (and any column not yet written) hold code 1 = trit 0 in every position.
constexpr uint8_t kZeroCodes = 0x55;

}  // namespace

namespace {

// Rows [r0, r1) of p's codes from those rows' latent weights x (row-major) and p's γ: the one
// packing loop (pack_ternary, ZeRO-3's pack_ternary_rows). Each row is written whole (padding
// included), so rows run in parallel.
template <typename W>
void pack_rows(const W* x, int64_t r0, int64_t r1, PackedTernary& p) {
  for (int64_t g = 0; g < p.groups; g++)
    SPECTRA_CHECK(std::isfinite(p.gamma.data<float>()[g]),
                  "pack_ternary: scale block {} has γ = {} (non-finite latent weights)", g,
                  p.gamma.data<float>()[g]);
  uint8_t* codes = p.codes.data<uint8_t>();
  const int64_t cols = p.cols, row_bytes = p.row_bytes();
  const int64_t run = p.axis == 1 ? p.span() : cols;  // columns sharing one γ along a row
#pragma omp parallel for schedule(static)
  for (int64_t r = r0; r < r1; r++) {
    uint8_t* row = codes + r * row_bytes;
    std::fill(row, row + row_bytes, kZeroCodes);
    const W* w = x + (r - r0) * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += run) {
      const W gamma = W(p.gamma_at(r, c0));
      for (int64_t c = c0; c < c0 + run; c++) {
        const int code = int(ternary_trit(w[c], gamma)) + 1;  // -0 -> 1
        uint8_t& byte = row[p.byte_of(0, c)];
        const int s = PackedTernary::shift_of(c);
        byte = uint8_t((byte & ~(3 << s)) | (code << s));
      }
    }
  }
}

void check_rows(const PackedTernary& p, int64_t r0, int64_t r1, const char* what) {
  SPECTRA_CHECK(0 <= r0 && r0 <= r1 && r1 <= p.rows, "{}: rows [{}, {}) of {}", what, r0, r1,
                p.rows);
}

}  // namespace

PackedTernary pack_ternary(const Tensor& w, float eps, int64_t groups, int axis) {
  SPECTRA_CHECK(!w.is_cuda(), "pack_ternary: w must be on the CPU, got {}", w.str());
  SPECTRA_CHECK(w.dim() == 2, "pack_ternary: w must be 2-D [rows, cols], got {}", w.str());
  SPECTRA_CHECK(axis == 0 || axis == 1, "pack_ternary: axis must be 0 or 1, got {}", axis);
  SPECTRA_CHECK(groups >= 1 && w.size(axis) % groups == 0,
                "pack_ternary: groups ({}) must be >= 1 and divide w.size({}) = {}", groups, axis,
                w.size(axis));
  PackedTernary p;
  p.rows = w.size(0);
  p.cols = w.size(1);
  p.groups = groups;
  p.axis = axis;
  p.codes = Tensor::empty({p.rows, p.row_bytes()}, DType::u8);
  p.gamma = Tensor::empty({groups}, DType::f32);
  // The quantizer's own scales, then its trits.
  cpu::ternary_group_gammas(w, eps, groups, axis, p.gamma.data<float>());
  cpu::dispatch_float("pack_ternary", w.dtype(), [&](auto wz) {
    using W = decltype(wz);
    pack_rows(w.data<W>(), 0, p.rows, p);
  });
  return p;
}

void ternary_abs_sums(const float* x, int64_t r0, int64_t r1, const PackedTernary& p,
                      double* sums) {
  check_rows(p, r0, r1, "ternary_abs_sums");
  const int64_t cols = p.cols, blocks = p.axis == 1 ? p.groups : 1, span = cols / blocks;
  // Each row's sum per column block in parallel, then added in row order: the same bits for
  // any thread count.
  std::vector<double> part(size_t((r1 - r0) * blocks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t r = r0; r < r1; r++)
    for (int64_t b = 0; b < blocks; b++) {
      double s = 0;
      const float* w = x + (r - r0) * cols + b * span;
      for (int64_t c = 0; c < span; c++) s += std::abs(double(w[c]));
      part[size_t((r - r0) * blocks + b)] = s;
    }
  for (int64_t r = r0; r < r1; r++)
    for (int64_t b = 0; b < blocks; b++)
      sums[p.axis == 1 ? b : p.block_of_row(r)] += part[size_t((r - r0) * blocks + b)];
}

void pack_ternary_rows(const float* x, int64_t r0, int64_t r1, PackedTernary& p) {
  check_rows(p, r0, r1, "pack_ternary_rows");
  pack_rows(x, r0, r1, p);
}

void unpack_ternary_quantized(const PackedTernary& p, Tensor& out, Tensor& gamma) {
  SPECTRA_CHECK(!out.is_cuda() && out.dtype() == DType::f32 && out.numel() == p.rows * p.cols &&
                    gamma.numel() == p.groups && gamma.dtype() == DType::f32,
                "unpack_ternary_quantized: out {} and gamma {} for [{}, {}] with {} scales",
                out.str(), gamma.str(), p.rows, p.cols, p.groups);
  gamma.copy_from(p.gamma);
  float* o = out.data<float>();
  if (p.groups > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < p.rows; r++) unpack_ternary_rows(p, r, r + 1, o + r * p.cols);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < p.rows; r++)
    for (int64_t c = 0; c < p.cols; c++) o[r * p.cols + c] = float(p.trit_at(r, c));
}

void unpack_ternary_rows(const PackedTernary& p, int64_t r0, int64_t r1, float* out) {
  // Along a row, runs of `run` columns share one γ: the whole row, or one column scale block.
  const int64_t run = p.axis == 1 ? p.span() : p.cols;
  for (int64_t r = r0; r < r1; r++) {
    float* o = out + (r - r0) * p.cols;
    for (int64_t c0 = 0; c0 < p.cols; c0 += run) {
      // float(double(γ) · trit) as the quantizer writes it: ±γ or 0, exact.
      const float g = p.gamma_at(r, c0);
      for (int64_t c = c0; c < c0 + run; c++) {
        const int t = p.trit_at(r, c);
        o[c] = t == 0 ? 0.f : (t > 0 ? g : -g);
      }
    }
  }
}

Tensor unpack_ternary(const PackedTernary& p) {
  Tensor out = Tensor::empty({p.rows, p.cols}, DType::f32);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < p.rows; r++)
    unpack_ternary_rows(p, r, r + 1, out.data<float>() + r * p.cols);
  return out;
}

void packed_matmul_reference(const PackedTernary& w, const Tensor& x, Tensor& y) {
  SPECTRA_CHECK(!x.is_cuda() && !y.is_cuda(),
                "packed_matmul_reference: x and y must be on the CPU");
  SPECTRA_CHECK(x.dtype() == DType::f32 && y.dtype() == DType::f32,
                "packed_matmul_reference: x and y must be f32, got {} and {}", x.str(), y.str());
  SPECTRA_CHECK(x.dim() >= 1 && x.size(-1) == w.cols,
                "packed_matmul_reference: x must be [n, {}], got {}", w.cols, x.str());
  const int64_t n = cpu::rows_of(x), rows = w.rows, cols = w.cols;
  SPECTRA_CHECK(y.dim() >= 1 && y.size(-1) == rows && cpu::rows_of(y) == n,
                "packed_matmul_reference: y must be [{}, {}], got {}", n, rows, y.str());
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  const float* gamma = w.gamma.data<float>();
  const uint8_t* codes = w.codes.data<uint8_t>();
  // Column scale blocks met by one row: `groups` of span columns (axis 1), else one of all.
  const int64_t blocks = w.axis == 1 ? w.groups : 1;
  const int64_t block_cols = w.axis == 1 ? w.span() : cols;
#pragma omp parallel
  {
    std::vector<int8_t> trit(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t c = 0; c < cols; c++)
        trit[size_t(c)] = int8_t(((codes[w.byte_of(r, c)] >> PackedTernary::shift_of(c)) & 3) - 1);
      for (int64_t i = 0; i < n; i++) {
        const float* xi = X + i * cols;
        double acc = 0;
        for (int64_t b = 0; b < blocks; b++) {
          double s = 0;
          for (int64_t c = b * block_cols; c < (b + 1) * block_cols; c++)
            s += double(trit[size_t(c)]) * double(xi[c]);
          acc += double(gamma[w.axis == 1 ? b : r / w.span()]) * s;
        }
        Y[i * rows + r] = float(acc);
      }
    }
  }
}

}  // namespace spectra::kernels
