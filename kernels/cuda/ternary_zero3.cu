// ZeRO-3's packing steps on the GPU (kernels/ternary_packed_cuda.h), the CPU's in
// kernels/cpu/ternary_packed.cpp being the reference:
//  - row_abs_sums: one block per (row, column scale block); each thread sums its strided
//    columns in f64, then a fixed-order tree over the block: the same bits on every run;
//  - pack_rows: one thread per code byte (4 columns: j, j+64, j+128, j+192 of its 256-column
//    block), trits through the shared ternary_trit with the column's or the row's γ; padding
//    columns get code 1 (trit 0);
//  - unpack_quantized: one thread per weight: the trit (one scale) or γ·trit (several), as
//    the quantizer writes them, in the compute dtype.
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/ternary.h"
#include "kernels/ternary_packed_cuda.h"

namespace spectra::kernels {

namespace {

using cuda::blocks_for;
using cuda::dispatch_act;
using cuda::from_f32;
using cuda::stream;

constexpr int kSumThreads = 256, kThreads = 256;

__global__ void row_abs_sums(const float* w, int64_t cols, int64_t span, double* sums) {
  __shared__ double part[kSumThreads];
  const int64_t row = blockIdx.x, block = blockIdx.y, blocks = gridDim.y;
  const float* x = w + row * cols + block * span;
  double s = 0;
  for (int64_t c = threadIdx.x; c < span; c += blockDim.x) s += fabs(double(x[c]));
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[row * blocks + block] = part[0];
}

// γ of weight (r, c), as PackedTernary::gamma_at.
__device__ __forceinline__ float gamma_at(const float* gamma, int axis, int64_t span, int64_t r,
                                          int64_t c) {
  return gamma[axis == 0 ? r / span : c / span];
}

__global__ void pack_rows(const float* w, int64_t r0, int64_t rows, int64_t cols, int64_t row_bytes,
                          int axis, int64_t span, const float* gamma, uint8_t* codes) {
  const int64_t n = rows * row_bytes;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t local = i / row_bytes, r = r0 + local, b = i % row_bytes;
    const int64_t base =
        b / PackedTernary::kBlockBytes * PackedTernary::kBlockCols + b % PackedTernary::kBlockBytes;
    unsigned byte = 0;
    for (int k = 0; k < 4; k++) {
      const int64_t c = base + k * PackedTernary::kBlockBytes;
      int code = 1;  // padding: trit 0
      if (c < cols)
        code = int(ternary_trit(w[local * cols + c], gamma_at(gamma, axis, span, r, c))) + 1;
      byte |= unsigned(code) << (2 * k);
    }
    codes[r * row_bytes + b] = uint8_t(byte);
  }
}

template <typename T>
__global__ void unpack_quantized(const uint8_t* codes, int64_t rows, int64_t cols,
                                 int64_t row_bytes, int axis, int64_t span, int scaled,
                                 const float* gamma, T* out) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const int64_t q = c % PackedTernary::kBlockCols;
    const uint8_t byte =
        codes[r * row_bytes + c / PackedTernary::kBlockCols * PackedTernary::kBlockBytes +
              q % PackedTernary::kBlockBytes];
    const float trit = float(int((byte >> (2 * (q / PackedTernary::kBlockBytes))) & 3) - 1);
    out[i] = from_f32<T>(scaled ? gamma_at(gamma, axis, span, r, c) * trit : trit);
  }
}

void check_device(const char* op, const Tensor& t) {
  if (!t.is_cuda()) throw Error(fmt::format("{}: {} must be on the GPU", op, t.str()));
}

}  // namespace

void ternary_row_abs_sums_cuda(const Tensor& w, int64_t r0, int64_t r1, const PackedTernary& p,
                               Tensor& sums) {
  const int64_t blocks = p.axis == 1 ? p.groups : 1, rows = r1 - r0;
  check_device("ternary_row_abs_sums_cuda", w);
  check_device("ternary_row_abs_sums_cuda", sums);
  SPECTRA_CHECK(0 <= r0 && r0 <= r1 && r1 <= p.rows && w.dtype() == DType::f32 &&
                    w.numel() == rows * p.cols && sums.dtype() == DType::f64 &&
                    sums.numel() == rows * blocks,
                "ternary_row_abs_sums_cuda: rows [{}, {}) of [{}, {}], w {}, sums {}", r0, r1,
                p.rows, p.cols, w.str(), sums.str());
  if (rows == 0) return;
  row_abs_sums<<<dim3(unsigned(rows), unsigned(blocks)), kSumThreads, 0, stream()>>>(
      w.data<float>(), p.cols, p.cols / blocks, sums.data<double>());
  CUDA_CHECK_LAUNCH("ternary_row_abs_sums_cuda");
}

void pack_ternary_rows_cuda(const Tensor& w, int64_t r0, int64_t r1, PackedTernary& p) {
  const int64_t rows = r1 - r0;
  check_device("pack_ternary_rows_cuda", w);
  check_device("pack_ternary_rows_cuda", p.codes);
  check_device("pack_ternary_rows_cuda", p.gamma);
  SPECTRA_CHECK(
      0 <= r0 && r0 <= r1 && r1 <= p.rows && w.dtype() == DType::f32 && w.numel() == rows * p.cols,
      "pack_ternary_rows_cuda: rows [{}, {}) of [{}, {}], w {}", r0, r1, p.rows, p.cols, w.str());
  if (rows == 0) return;
  const int64_t bytes = rows * p.row_bytes();
  pack_rows<<<blocks_for(bytes, kThreads), kThreads, 0, stream()>>>(
      w.data<float>(), r0, rows, p.cols, p.row_bytes(), p.axis, p.span(), p.gamma.data<float>(),
      p.codes.data<uint8_t>());
  CUDA_CHECK_LAUNCH("pack_ternary_rows_cuda");
}

void unpack_ternary_quantized_cuda(const PackedTernary& p, Tensor& out, Tensor& gamma) {
  check_device("unpack_ternary_quantized_cuda", p.codes);
  check_device("unpack_ternary_quantized_cuda", out);
  check_device("unpack_ternary_quantized_cuda", gamma);
  SPECTRA_CHECK(
      out.numel() == p.rows * p.cols && gamma.numel() == p.groups && gamma.dtype() == DType::f32,
      "unpack_ternary_quantized_cuda: out {} and gamma {} for [{}, {}] with {} scales", out.str(),
      gamma.str(), p.rows, p.cols, p.groups);
  gamma.copy_from(p.gamma);
  dispatch_act("unpack_ternary_quantized_cuda", out.dtype(), [&](auto z) {
    using T = decltype(z);
    unpack_quantized<T><<<blocks_for(out.numel(), kThreads), kThreads, 0, stream()>>>(
        p.codes.data<uint8_t>(), p.rows, p.cols, p.row_bytes(), p.axis, p.span(),
        p.groups > 1 ? 1 : 0, p.gamma.data<float>(), static_cast<T*>(out.raw()));
  });
  CUDA_CHECK_LAUNCH("unpack_ternary_quantized_cuda");
}

}  // namespace spectra::kernels
