// The packed ternary matmul on the GPU (kernels/ternary_packed_cuda.h), in two launches:
//  1. prepare: one block per activation row. exact mode: x widened to f32 and zero-padded to
//     cols_padded columns. int8 mode: x quantized exactly as kernels::quantize_int8 (absmax, f32
//     arithmetic, ties to even), zero-padded, with its scale and Σq over each column range.
//  2. packed_rows: one warp per weight row, N activation rows per warp (a decode step is one
//     tile; a prefill runs ceil(n / 8) tiles along gridDim.y, each re-reading the codes from L2).
//     Each lane loads 16 bytes of codes at a time (a quarter of a 64-byte code block: 32 lanes
//     read 512 consecutive bytes), splits each 4-byte word into its four 2-bit planes (plane k
//     of word j holds columns j·4 .. j·4 + 3 of the block's quarter k, one per byte) and
//       int8:  __dp4a(codes, q) over the 4 columns: Σ code·q, exact in int32;
//       exact: Σ (code - 1)·x in f32.
//     The lanes' sums meet in a warp reduction per column range (a range = a scale block along
//     columns, else the whole row); γ and the activation scale are applied in f64 in the CPU's
//     order with explicit __dmul_rn / __dadd_rn, so no fused multiply-add changes the rounding:
//       y = f32(f64(scale_i) · Σ_g f64(γ_g)·f64(Σ code·q - Σ q))   (int8: the CPU's bits)
//       y = f32(Σ_g f64(γ_g)·f64(s_g))                                (exact: f32 sums s_g)
// A range that ends inside a code block (TriLM 1.1B's 896-column shards) masks the columns
// outside it: in int8 mode their codes become 0 (they add nothing to Σ code·q, and Σ q covers
// the range only), in exact mode 1 (trit 0).
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/ternary_packed_cuda.h"

namespace spectra::kernels {

namespace {

using cuda::stream;

constexpr int kPrepThreads = 256;  // prepare: threads per activation row
constexpr int kWarps = 4;          // packed_rows: weight rows (warps) per block
constexpr int kMaxN = 8;           // packed_rows: most activation rows per warp

__device__ __forceinline__ int warp_sum_int(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Integer sum over the block (blockDim.x a multiple of 32); every thread gets the result.
__device__ __forceinline__ int block_sum_int(int v, int* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum_int(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum_int(lane < warps ? scratch[lane] : 0);
}

// exact mode: xf[i, c] = f32(x[i, c]) for c < cols, 0 up to stride. Block i: activation row i.
template <typename T>
__global__ void pad_f32(const T* x, int cols, int stride, float* xf) {
  const T* xi = x + int64_t(blockIdx.x) * cols;
  float* oi = xf + int64_t(blockIdx.x) * stride;
  for (int c = threadIdx.x; c < stride; c += blockDim.x)
    oi[c] = c < cols ? cuda::to_f32(xi[c]) : 0.f;
}

// int8 mode: row i quantized as kernels::quantize_int8 does it (amax = max |x|, ignoring NaN as
// std::max does; q = clamp(rint(x·(127/amax)), ±127); scale = amax/127; amax 0 or non-finite: q
// = 0 and scale 0 or NaN), zero-padded to stride; qsum[i, g] = Σ q over range g's columns
// [g·span, (g + 1)·span).
template <typename T>
__global__ void quantize_rows(const T* x, int cols, int stride, int nranges, int span, int8_t* q,
                              float* scale, int* qsum) {
  __shared__ float fscratch[32];
  __shared__ int iscratch[32];
  const T* xi = x + int64_t(blockIdx.x) * cols;
  int8_t* qi = q + int64_t(blockIdx.x) * stride;
  float amax = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    amax = fmaxf(amax, fabsf(cuda::to_f32(xi[c])));
  amax = cuda::block_max(amax, fscratch);
  const bool ok = amax > 0.f && isfinite(amax);
  const float inv = ok ? __fdiv_rn(127.f, amax) : 0.f;
  for (int c = threadIdx.x; c < stride; c += blockDim.x) {
    float v = 0.f;
    if (ok && c < cols) v = fminf(fmaxf(rintf(__fmul_rn(cuda::to_f32(xi[c]), inv)), -127.f), 127.f);
    qi[c] = int8_t(int(v));
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = ok ? __fdiv_rn(amax, 127.f) : (amax == 0.f ? 0.f : NAN);
  __syncthreads();  // this block's writes of qi are visible to all its threads
  for (int g = 0; g < nranges; g++) {
    int s = 0;
    for (int c = g * span + int(threadIdx.x); c < (g + 1) * span; c += blockDim.x) s += qi[c];
    s = block_sum_int(s, iscratch);
    if (threadIdx.x == 0) qsum[int64_t(blockIdx.x) * nranges + g] = s;
  }
}

// The bytes 0 .. k-1 of a word set (k clamped to 0..4).
__device__ __forceinline__ uint32_t low_bytes(int k) {
  return k <= 0 ? 0u : (k >= 4 ? ~0u : (1u << (8 * k)) - 1u);
}

// The four columns c .. c+3 of a plane, each byte 0xff where the column lies in [c0, c1).
__device__ __forceinline__ uint32_t in_range(int c, int c0, int c1) {
  return low_bytes(c1 - c) & ~low_bytes(c0 - c);
}

// One warp per weight row r = blockIdx.x·kWarps + warp, activation rows i0 .. i0 + N - 1 with
// i0 = (i_base + blockIdx.y)·N. Activations (xf or q) are [n, stride], zero-padded; rows past n
// are read as row n - 1 and their results dropped (no divergence in the inner loop).
template <int N, bool kInt8>
__global__ void __launch_bounds__(kWarps * 32)
    packed_rows(const uint32_t* codes, int64_t rows, int64_t row_words, const float* gamma,
                int axis, int64_t gamma_span, int nranges, int span, const float* xf,
                const int8_t* q, const float* scale, const int* qsum, int stride, int64_t n,
                int64_t i_base, float* y) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;  // the whole warp leaves; nothing below syncs the block
  const int64_t i0 = (i_base + blockIdx.y) * N;
  int64_t ai[N];  // activation row of each tile slot (clamped)
#pragma unroll
  for (int t = 0; t < N; t++) ai[t] = i0 + t < n ? i0 + t : n - 1;
  const uint4* wr = reinterpret_cast<const uint4*>(codes + r * row_words);
  double total[N];
#pragma unroll
  for (int t = 0; t < N; t++) total[t] = 0.0;

  for (int g = 0; g < nranges; g++) {
    const int c0 = g * span, c1 = c0 + span;
    // The range's code blocks [c0 / 256, ceil(c1 / 256)), in 16-byte units (4 per block).
    const int v0 = c0 / int(PackedTernary::kBlockCols) * 4;
    const int v1 = (c1 + int(PackedTernary::kBlockCols) - 1) / int(PackedTernary::kBlockCols) * 4;
    int isum[N];
    float fsum[N];
#pragma unroll
    for (int t = 0; t < N; t++) isum[t] = 0, fsum[t] = 0.f;
    for (int v = v0 + lane; v < v1; v += 32) {
      const uint4 u = wr[v];
      const uint32_t words[4] = {u.x, u.y, u.z, u.w};
      const int block_col = v / 4 * int(PackedTernary::kBlockCols);
      const bool whole = block_col >= c0 && block_col + int(PackedTernary::kBlockCols) <= c1;
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int j = (v % 4 * 4 + e) * 4;  // byte of the block: columns j .. j+3 of each quarter
#pragma unroll
        for (int k = 0; k < 4; k++) {
          const int c = block_col + 64 * k + j;  // this plane's first column
          uint32_t plane = (words[e] >> (2 * k)) & 0x03030303u;
          const uint32_t keep = whole ? ~0u : in_range(c, c0, c1);
          if constexpr (kInt8) {
            plane &= keep;  // code 0 outside: adds nothing
#pragma unroll
            for (int t = 0; t < N; t++)
              isum[t] = __dp4a(int(plane), *reinterpret_cast<const int*>(q + ai[t] * stride + c),
                               isum[t]);
          } else {
            plane = (plane & keep) | (0x01010101u & ~keep);  // code 1 (trit 0) outside
            float tr[4];
#pragma unroll
            for (int b = 0; b < 4; b++) tr[b] = float(int((plane >> (8 * b)) & 3u) - 1);
#pragma unroll
            for (int t = 0; t < N; t++) {
              const float4 xv = *reinterpret_cast<const float4*>(xf + ai[t] * stride + c);
              fsum[t] = fmaf(tr[3], xv.w,
                             fmaf(tr[2], xv.z, fmaf(tr[1], xv.y, fmaf(tr[0], xv.x, fsum[t]))));
            }
          }
        }
      }
    }
    const double gm = gamma[axis == 1 ? int64_t(g) : r / gamma_span];
#pragma unroll
    for (int t = 0; t < N; t++) {
      double s;
      if constexpr (kInt8)
        s = double(int64_t(warp_sum_int(isum[t])) - qsum[ai[t] * nranges + g]);
      else
        s = double(cuda::warp_sum(fsum[t]));
      total[t] = __dadd_rn(total[t], __dmul_rn(gm, s));  // the CPU's acc += γ·term, unfused
    }
  }
#pragma unroll
  for (int t = 0; t < N; t++)
    if (lane == t && i0 + t < n) {
      const double o = kInt8 ? __dmul_rn(double(scale[i0 + t]), total[t]) : total[t];
      y[(i0 + t) * rows + r] = __double2float_rn(o);
    }
}

template <int N, bool kInt8>
void launch_rows(const PackedTernary& w, int nranges, int span, const float* xf, const int8_t* q,
                 const float* scale, const int* qsum, int64_t n, float* y) {
  const int64_t tiles = (n + N - 1) / N, max_y = 65535;
  const int64_t gamma_span = w.axis == 0 ? w.span() : 1;
  for (int64_t t0 = 0; t0 < tiles; t0 += max_y) {  // gridDim.y is at most 65535
    const dim3 grid(unsigned((w.rows + kWarps - 1) / kWarps),
                    unsigned(std::min(max_y, tiles - t0)));
    packed_rows<N, kInt8><<<grid, kWarps * 32, 0, stream()>>>(
        reinterpret_cast<const uint32_t*>(w.codes.data<uint8_t>()), w.rows, w.row_bytes() / 4,
        w.gamma.data<float>(), w.axis, gamma_span, nranges, span, xf, q, scale, qsum,
        int(w.cols_padded()), n, t0, y);
  }
}

// Activation rows per warp: the smallest tile that holds n (decode), else kMaxN.
template <bool kInt8>
void launch_tiles(const PackedTernary& w, int nranges, int span, const float* xf, const int8_t* q,
                  const float* scale, const int* qsum, int64_t n, float* y) {
  if (n == 1)
    launch_rows<1, kInt8>(w, nranges, span, xf, q, scale, qsum, n, y);
  else if (n == 2)
    launch_rows<2, kInt8>(w, nranges, span, xf, q, scale, qsum, n, y);
  else if (n <= 4)
    launch_rows<4, kInt8>(w, nranges, span, xf, q, scale, qsum, n, y);
  else
    launch_rows<kMaxN, kInt8>(w, nranges, span, xf, q, scale, qsum, n, y);
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

PackedTernary to_device(const PackedTernary& p, Device d) {
  PackedTernary out = p;
  out.codes = p.codes.to(d);
  out.gamma = p.gamma.to(d);
  return out;
}

void packed_matmul_cuda(const PackedTernary& w, const Tensor& x, Tensor& y, Activations mode) {
  SPECTRA_CHECK(w.codes.is_cuda() && w.gamma.is_cuda() && x.is_cuda() && y.is_cuda(),
                "packed_matmul_cuda: codes, gamma, x and y must be on the GPU, got {}, {}, {}, {}",
                w.codes.str(), w.gamma.str(), x.str(), y.str());
  SPECTRA_CHECK(w.codes.dtype() == DType::u8 && w.codes.dim() == 2 && w.codes.size(0) == w.rows &&
                    w.codes.size(1) == w.row_bytes(),
                "packed_matmul_cuda: codes must be u8 [{}, {}], got {}", w.rows, w.row_bytes(),
                w.codes.str());
  SPECTRA_CHECK(w.gamma.dtype() == DType::f32 && w.gamma.numel() == w.groups,
                "packed_matmul_cuda: gamma must be f32 [{}], got {}", w.groups, w.gamma.str());
  SPECTRA_CHECK(w.axis == 0 || w.axis == 1, "packed_matmul_cuda: axis {}", w.axis);
  SPECTRA_CHECK(w.cols >= 1 && w.cols_padded() < (int64_t(1) << 30),
                "packed_matmul_cuda: cols = {} out of range", w.cols);
  SPECTRA_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16,
                "packed_matmul_cuda: x must be f32 or bf16, got {}", x.str());
  SPECTRA_CHECK(y.dtype() == DType::f32, "packed_matmul_cuda: y must be f32, got {}", y.str());
  SPECTRA_CHECK(x.dim() >= 1 && x.size(-1) == w.cols,
                "packed_matmul_cuda: x must be [n, {}], got {}", w.cols, x.str());
  const int64_t n = cuda::rows_of(x);
  SPECTRA_CHECK(y.dim() >= 1 && y.size(-1) == w.rows && cuda::rows_of(y) == n,
                "packed_matmul_cuda: y must be [{}, {}], got {}", n, w.rows, y.str());
  SPECTRA_CHECK(aligned(w.codes.raw(), 16), "packed_matmul_cuda: codes must be 16-byte aligned");
  if (n == 0 || w.rows == 0) return;
  SPECTRA_CHECK(n < (int64_t(1) << 31), "packed_matmul_cuda: {} activation rows", n);

  const int cols = int(w.cols), stride = int(w.cols_padded());
  // Column ranges with their own γ: `groups` of span columns (axis 1), else the whole row.
  const int nranges = w.axis == 1 && w.groups > 1 ? int(w.groups) : 1;
  const int span = nranges > 1 ? int(w.span()) : cols;
  const unsigned rows_grid = unsigned(n);
  cuda::dispatch_act("packed_matmul_cuda", x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* X = static_cast<const T*>(x.raw());
    if (mode == Activations::exact) {
      Tensor xf = cuda::scratch({n, stride});
      pad_f32<T><<<rows_grid, kPrepThreads, 0, stream()>>>(X, cols, stride, xf.data<float>());
      CUDA_CHECK_LAUNCH("packed_matmul_cuda (pad)");
      launch_tiles<false>(w, nranges, span, xf.data<float>(), nullptr, nullptr, nullptr, n,
                          y.data<float>());
    } else {
      Tensor q = cuda::scratch({n, stride}, DType::u8);  // int8 values
      Tensor scale = cuda::scratch({n});
      Tensor qsum = cuda::scratch({n, nranges}, DType::i32);
      int8_t* Q = static_cast<int8_t*>(q.raw());
      quantize_rows<T><<<rows_grid, kPrepThreads, 0, stream()>>>(
          X, cols, stride, nranges, span, Q, scale.data<float>(), qsum.data<int32_t>());
      CUDA_CHECK_LAUNCH("packed_matmul_cuda (quantize)");
      launch_tiles<true>(w, nranges, span, nullptr, Q, scale.data<float>(), qsum.data<int32_t>(), n,
                         y.data<float>());
    }
  });
  CUDA_CHECK_LAUNCH("packed_matmul_cuda");
}

}  // namespace spectra::kernels
