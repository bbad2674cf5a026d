// The packed ternary matmul (kernels/ternary_packed.h): activations prepared once (zero-padded
// to whole code blocks; in int8 mode quantized per row), then tiles of weight rows × activation
// rows in parallel, each running the instruction set's inner loop (kernels/cpu/ternary_simd.h)
// once per scale block and applying γ and the activation scale in f64.
#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/common.h"
#include "kernels/cpu/ternary_simd.h"
#include "kernels/cpu_isa.h"
#include "kernels/ternary_packed.h"

namespace spectra::kernels {

namespace {

using cpu::packed::Codes;

constexpr int64_t kTileRows = 16;  // weight rows per task
constexpr int64_t kTileN = 64;     // activation rows per task: 64·cols bytes stay in L2

// A column range with its own γ: one per scale block along columns, else the whole row.
struct Range {
  int64_t c0, c1;
  int64_t b0() const { return c0 / PackedTernary::kBlockCols; }
  int64_t b1() const { return (c1 + PackedTernary::kBlockCols - 1) / PackedTernary::kBlockCols; }
};

std::vector<Range> column_ranges(const PackedTernary& w) {
  if (w.axis == 0 || w.groups == 1) return {{0, w.cols}};
  std::vector<Range> out;
  for (int64_t g = 0; g < w.groups; g++) out.push_back({g * w.span(), (g + 1) * w.span()});
  return out;
}

// The activations a range's kernel call reads: [n, cols_padded], zero outside the range where
// the range's ends cut a code block (the kernel always runs over whole blocks). `full` is the
// padded activations themselves, shared by the ranges that need no masking.
template <typename T>
struct Prepared {
  std::vector<T> full;
  std::vector<std::vector<T>> masked;  // per range; empty: reads `full`
  const T* of(size_t g) const { return masked[g].empty() ? full.data() : masked[g].data(); }
};

template <typename T>
Prepared<T> mask_ranges(std::vector<T> full, const std::vector<Range>& ranges, int64_t n,
                        int64_t stride, int64_t cols) {
  Prepared<T> p{std::move(full), std::vector<std::vector<T>>(ranges.size())};
  const int64_t bc = PackedTernary::kBlockCols;
  for (size_t g = 0; g < ranges.size(); g++) {
    const Range r = ranges[g];
    if (r.c0 % bc == 0 && (r.c1 % bc == 0 || r.c1 == cols)) continue;
    std::vector<T>& m = p.masked[g];
    m.assign(size_t(n * stride), T(0));
    for (int64_t i = 0; i < n; i++)
      std::copy(p.full.begin() + i * stride + r.c0, p.full.begin() + i * stride + r.c1,
                m.begin() + i * stride + r.c0);
  }
  return p;
}

// The instruction set's variant of an inner loop (kernels/cpu_isa.h).
template <typename Kernel>
Kernel for_isa(Kernel portable, [[maybe_unused]] Kernel avx2, [[maybe_unused]] Kernel avx512) {
#if defined(__x86_64__)
  if (cpu_isa() == CpuIsa::avx512) return avx512;
  if (cpu_isa() == CpuIsa::avx2) return avx2;
#endif
  return portable;
}

#if defined(__x86_64__)
#define SPECTRA_VARIANTS(name) \
  cpu::packed::name##_portable, cpu::packed::name##_avx2, cpu::packed::name##_avx512
#else
#define SPECTRA_VARIANTS(name) \
  cpu::packed::name##_portable, cpu::packed::name##_portable, cpu::packed::name##_portable
#endif
cpu::packed::DotInt8 int8_kernel() { return for_isa(SPECTRA_VARIANTS(dot_int8)); }
cpu::packed::DotS8 s8_kernel() { return for_isa(SPECTRA_VARIANTS(dot_s8)); }
cpu::packed::DotF32 f32_kernel() { return for_isa(SPECTRA_VARIANTS(dot_f32)); }
#undef SPECTRA_VARIANTS

// Calls tile(r0, rr, i0, ni, scratch) for every tile of rows [r0, r0 + rr) × activation rows
// [i0, i0 + ni), in parallel; each thread makes its scratch once (make_scratch()).
template <typename MakeScratch, typename Tile>
void for_each_tile(int64_t rows, int64_t n, MakeScratch make_scratch, Tile tile) {
  const int64_t row_tiles = (rows + kTileRows - 1) / kTileRows, n_tiles = (n + kTileN - 1) / kTileN;
#pragma omp parallel
  {
    auto scratch = make_scratch();
#pragma omp for collapse(2) schedule(static)
    for (int64_t rt = 0; rt < row_tiles; rt++)
      for (int64_t nt = 0; nt < n_tiles; nt++) {
        const int64_t r0 = rt * kTileRows, i0 = nt * kTileN;
        tile(r0, std::min(kTileRows, rows - r0), i0, std::min(kTileN, n - i0), scratch);
      }
  }
}

// Activation rows x [n, cols] to int8 [n, stride] (zero-padded) and their scales.
struct Int8Rows {
  std::vector<int8_t> q;
  std::vector<float> scale;
};
Int8Rows quantize_rows(const float* x, int64_t n, int64_t cols, int64_t stride) {
  Int8Rows out{std::vector<int8_t>(size_t(n * stride), 0), std::vector<float>(size_t(n))};
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    quantize_int8(x + i * cols, cols, &out.q[size_t(i * stride)], &out.scale[size_t(i)]);
  return out;
}

// Runs `kernel` over the tiles, once per column range. For each output, term(g, i, sum) turns
// range g's raw sum for activation row i into its contribution before γ; the outputs are
// y[i, r] = finish(i, Σ_g f64(γ_g(r))·term).
template <typename T, typename S, typename Term, typename Finish>
void run_tiles(const PackedTernary& w, const std::vector<Range>& ranges, const Prepared<T>& a,
               int64_t stride, int64_t n,
               void (*kernel)(const Codes&, const T*, int64_t, int64_t, S*), Term term,
               Finish finish, float* y) {
  const uint8_t* codes = w.codes.data<uint8_t>();
  const float* gamma = w.gamma.data<float>();
  struct Scratch {
    std::vector<S> sums = std::vector<S>(size_t(kTileRows * kTileN));
    std::vector<double> acc = std::vector<double>(size_t(kTileRows * kTileN));
  };
  for_each_tile(
      w.rows, n, [] { return Scratch{}; },
      [&](int64_t r0, int64_t rr, int64_t i0, int64_t ni, Scratch& s) {
        std::fill(s.acc.begin(), s.acc.end(), 0.0);
        for (size_t g = 0; g < ranges.size(); g++) {
          const Codes c{codes + r0 * w.row_bytes(), w.row_bytes(), rr, ranges[g].b0(),
                        ranges[g].b1()};
          kernel(c, a.of(g) + i0 * stride, stride, ni, s.sums.data());
          for (int64_t r = 0; r < rr; r++) {
            const double gm = gamma[w.axis == 1 ? int64_t(g) : (r0 + r) / w.span()];
            for (int64_t i = 0; i < ni; i++)
              s.acc[size_t(r * ni + i)] += gm * term(g, i0 + i, s.sums[size_t(r * ni + i)]);
          }
        }
        for (int64_t i = 0; i < ni; i++)
          for (int64_t r = 0; r < rr; r++)
            y[(i0 + i) * w.rows + r0 + r] = finish(i0 + i, s.acc[size_t(r * ni + i)]);
      });
}

// The exact mode for many activation rows (a prompt, a scoring batch): each task unpacks a tile
// of weight rows to f32 γ·T once (the quantizer's effective weights, exactly) and multiplies every
// activation row with it through BLAS; the unpacking is one pass over the tile, the product n.
constexpr int64_t kGemmFrom = 16;  // activation rows from which this beats the SIMD loops
constexpr int64_t kGemmRows = 64;  // weight rows unpacked per task

void exact_by_gemm(const PackedTernary& w, const float* x, int64_t n, float* y) {
  const int64_t rows = w.rows, cols = w.cols, tiles = (rows + kGemmRows - 1) / kGemmRows;
#pragma omp parallel
  {
    std::vector<float> tile(size_t(kGemmRows * cols));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; t++) {
      const int64_t r0 = t * kGemmRows, rr = std::min(kGemmRows, rows - r0);
      unpack_ternary_rows(w, r0, r0 + rr, tile.data());
      cpu::gemm(false, true, n, rr, cols, 1.f, x, cols, tile.data(), cols, 0.f, y + r0, rows);
    }
  }
}

}  // namespace

const char* activations_name(Activations a) { return a == Activations::int8 ? "int8" : "exact"; }

Activations parse_activations(const std::string& s, const std::string& what) {
  if (s == "exact") return Activations::exact;
  if (s == "int8") return Activations::int8;
  user_error("{}: '{}' is not an activation mode (exact or int8)", what, s);
}

void quantize_int8(const float* x, int64_t cols, int8_t* q, float* scale) {
  // Written so the compiler vectorizes it: |x| compares as the integer of its bits (sign
  // cleared), where a NaN or an infinity is the largest; (v + 1.5·2^23) - 1.5·2^23 rounds
  // |v| < 2^22 to the nearest integer, ties to even, as nearbyint does.
  uint32_t top = 0;
  for (int64_t c = 0; c < cols; c++) {
    const uint32_t b = std::bit_cast<uint32_t>(x[c]) & 0x7fffffffu;
    top = b > top ? b : top;
  }
  const float amax = std::bit_cast<float>(top);
  if (amax == 0 || top >= 0x7f800000u) {  // all zero, or a NaN or infinity somewhere
    for (int64_t c = 0; c < cols; c++) q[c] = 0;
    *scale = amax == 0 ? 0.f : NAN;
    return;
  }
  const float inv = std::min(127.f / amax, FLT_MAX), magic = 0x1.8p23f;  // min: denormal amax
  for (int64_t c = 0; c < cols; c++) {
    const float r = (x[c] * inv + magic) - magic;
    q[c] = int8_t(int(r > 127.f ? 127.f : r < -127.f ? -127.f : r));
  }
  *scale = amax / 127.f;
}

void packed_matmul(const PackedTernary& w, const Tensor& x, Tensor& y, Activations mode) {
  packed_matmuls({&w}, x, {&y}, mode);
}

void packed_matmuls(const std::vector<const PackedTernary*>& ws, const Tensor& x,
                    const std::vector<Tensor*>& ys, Activations mode) {
  SPECTRA_CHECK(!ws.empty() && ws.size() == ys.size(), "packed_matmuls: {} weights, {} outputs",
                ws.size(), ys.size());
  const PackedTernary& w0 = *ws[0];
  SPECTRA_CHECK(!x.is_cuda() && x.dtype() == DType::f32,
                "packed_matmul: x must be f32 on the CPU, got {}", x.str());
  SPECTRA_CHECK(x.dim() >= 1 && x.size(-1) == w0.cols, "packed_matmul: x must be [n, {}], got {}",
                w0.cols, x.str());
  const int64_t n = cpu::rows_of(x), cols = w0.cols, stride = w0.cols_padded();
  for (size_t k = 0; k < ws.size(); k++) {
    const PackedTernary& w = *ws[k];
    const Tensor& y = *ys[k];
    // One preparation of x serves every weight with the same columns and scale blocks.
    SPECTRA_CHECK(w.cols == cols && w.axis == w0.axis && w.groups == w0.groups,
                  "packed_matmuls: weight {} has another column layout than the first", k);
    SPECTRA_CHECK(!y.is_cuda() && y.dtype() == DType::f32,
                  "packed_matmul: y must be f32 on the CPU, got {}", y.str());
    SPECTRA_CHECK(y.dim() >= 1 && y.size(-1) == w.rows && cpu::rows_of(y) == n,
                  "packed_matmul: y must be [{}, {}], got {}", n, w.rows, y.str());
  }
  if (n == 0) return;
  const float* X = x.data<float>();
  const std::vector<Range> ranges = column_ranges(w0);

  if (mode == Activations::exact && n >= kGemmFrom) {
    for (size_t k = 0; k < ws.size(); k++) exact_by_gemm(*ws[k], X, n, ys[k]->data<float>());
    return;
  }
  if (mode == Activations::exact) {
    std::vector<float> padded(size_t(n * stride), 0.f);
    for (int64_t i = 0; i < n; i++)
      std::copy(X + i * cols, X + (i + 1) * cols, &padded[i * stride]);
    const Prepared<float> a = mask_ranges(std::move(padded), ranges, n, stride, cols);
    for (size_t k = 0; k < ws.size(); k++)
      run_tiles(
          *ws[k], ranges, a, stride, n, f32_kernel(),
          [](size_t, int64_t, float s) { return double(s); },
          [](int64_t, double acc) { return float(acc); }, ys[k]->data<float>());
    return;
  }

  Int8Rows q = quantize_rows(X, n, cols, stride);
  const Prepared<int8_t> a = mask_ranges(std::move(q.q), ranges, n, stride, cols);
  // The kernels sum code·q with code = trit + 1: Σ trit·q = that - Σ q over the range.
  std::vector<int64_t> qsum(size_t(n) * ranges.size());
  for (size_t g = 0; g < ranges.size(); g++)
    for (int64_t i = 0; i < n; i++) {
      const int8_t* qi = a.of(g) + i * stride;
      int64_t s = 0;
      for (int64_t c = ranges[g].c0; c < ranges[g].c1; c++) s += qi[c];
      qsum[size_t(i) * ranges.size() + g] = s;
    }
  for (size_t k = 0; k < ws.size(); k++)
    run_tiles(
        *ws[k], ranges, a, stride, n, int8_kernel(),
        [&](size_t g, int64_t i, int32_t s) {
          return double(int64_t(s) - qsum[size_t(i) * ranges.size() + g]);
        },
        [&](int64_t i, double acc) { return float(double(q.scale[size_t(i)]) * acc); },
        ys[k]->data<float>());
}

Int8Matrix quantize_rows_int8(const Tensor& w) {
  SPECTRA_CHECK(!w.is_cuda() && w.dtype() == DType::f32 && w.dim() == 2,
                "quantize_rows_int8: w must be f32 [rows, cols] on the CPU, got {}", w.str());
  Int8Matrix m;
  m.rows = w.size(0);
  m.cols = w.size(1);
  m.q = Tensor::zeros({m.rows, m.cols_padded()}, DType::u8);
  m.scale = Tensor::empty({m.rows}, DType::f32);
  int8_t* q = reinterpret_cast<int8_t*>(m.q.data<uint8_t>());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < m.rows; r++)
    quantize_int8(w.data<float>() + r * m.cols, m.cols, q + r * m.cols_padded(),
                  m.scale.data<float>() + r);
  return m;
}

void int8_matmul(const Int8Matrix& w, const Tensor& x, Tensor& y) {
  SPECTRA_CHECK(!x.is_cuda() && !y.is_cuda() && x.dtype() == DType::f32 && y.dtype() == DType::f32,
                "int8_matmul: x and y must be f32 on the CPU, got {} and {}", x.str(), y.str());
  SPECTRA_CHECK(x.dim() >= 1 && x.size(-1) == w.cols, "int8_matmul: x must be [n, {}], got {}",
                w.cols, x.str());
  const int64_t n = cpu::rows_of(x), rows = w.rows, stride = w.cols_padded();
  SPECTRA_CHECK(y.dim() >= 1 && y.size(-1) == rows && cpu::rows_of(y) == n,
                "int8_matmul: y must be [{}, {}], got {}", n, rows, y.str());
  const Int8Rows q = quantize_rows(x.data<float>(), n, w.cols, stride);
  const cpu::packed::DotS8 kernel = s8_kernel();
  const float* sw = w.scale.data<float>();
  float* Y = y.data<float>();
  for_each_tile(
      rows, n, [] { return std::vector<int32_t>(size_t(kTileRows * kTileN)); },
      [&](int64_t r0, int64_t rr, int64_t i0, int64_t ni, std::vector<int32_t>& sums) {
        const Codes c{w.q.data<uint8_t>() + r0 * stride, stride, rr, 0, stride / 64};
        kernel(c, q.q.data() + i0 * stride, stride, ni, sums.data());
        for (int64_t r = 0; r < rr; r++)
          for (int64_t i = 0; i < ni; i++)
            Y[(i0 + i) * rows + r0 + r] =
                float(double(q.scale[size_t(i0 + i)]) *
                      (double(sw[r0 + r]) * double(sums[size_t(r * ni + i)])));
      });
}

}  // namespace spectra::kernels
