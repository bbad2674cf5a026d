// The building blocks of model.attention: flash (kernels/cuda/flash_attention.cu, the forward;
// kernels/cuda/flash_attention_bwd.cu, the backward): tensor-core attention, FlashAttention-2
// style (Dao 2023), for bf16 and f16 with head_dim 64 or 128 and Tq == Tk.
//
// Building blocks: mma.sync.m16n8k16 (16-bit inputs, f32 accumulators) through inline PTX;
// ldmatrix to load operand fragments from shared memory (.trans where the operand is stored
// k-major: V in P·V, dO/Q/K in the gradient products); cp.async (16-byte copies, zero-filled
// past the end of the sequence) into double-buffered tiles. A tile is [rows][D] 16-bit values
// whose 16-byte chunks are XOR-swizzled by (row mod 8): the 8 row addresses of one ldmatrix
// phase then fall on 8 distinct bank groups, so loads are free of bank conflicts without padding.
//
// Warp mapping: every warp owns 16 rows of the block's "outer" operand and all of its columns,
// so softmax rows never cross warps; the two rows a thread holds in an accumulator are g and
// g + 8 (g = lane / 4), its columns 2·(lane % 4) + {0, 1} of each 8-wide n-tile. The f32
// accumulator of S (or Sᵀ) maps register for register onto the A fragment of the next product,
// so P and dS go from registers to the tensor cores without shared memory.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "kernels/attention_blocks.h"
#include "kernels/cuda/common.cuh"

namespace spectra::kernels::cuda::flash {

namespace ab = spectra::kernels::attn_blocks;

inline constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

inline constexpr int kFwdBr = 128, kFwdBc = 64, kFwdThreads = 256;  // 8 warps
inline constexpr int kBwdBr = 64, kBwdBc = 64, kBwdThreads = 128;   // 4 warps
static_assert(kFwdBr == 16 * (kFwdThreads / 32), "a forward warp owns 16 query rows");
static_assert(kBwdBr == 16 * (kBwdThreads / 32) && kBwdBc == kBwdBr, "a backward warp: 16 rows");
// The query block of the dK/dV walk: 32 rows at head_dim 128 keeps its registers under 255.
constexpr int dkdv_query_block(int d) { return d == 128 ? 32 : 64; }

// ---- PTX wrappers -------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; `valid` false fills the 16 bytes with zeros instead.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 16-bit matrices; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// The same, each matrix transposed (for operands stored k-major).
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a·b for one 16x8x16 tile: a row-major 16x16, b "col" 16x8, c f32 16x8.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                        uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a 16-bit pair (lo in the low half, the lower column) and back.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ float2 unpack2(uint32_t u, __nv_bfloat16) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u));
}
__device__ __forceinline__ float2 unpack2(uint32_t u, __half) {
  return __half22float2(*reinterpret_cast<__half2*>(&u));
}

// ---- Tiles --------------------------------------------------------------------------------

// Element offset of (row, col) in a swizzled [rows][D] tile; col is a multiple of 8.
template <int D>
__device__ __forceinline__ int swz(int row, int col) {
  return row * D + (((col >> 3) ^ (row & 7)) << 3);
}

// Starts copying rows [row0, row0 + ROWS) of one head (row stride ld elements) into a tile;
// rows at or past t are zero-filled.
template <int ROWS, int D, int THREADS, typename T>
__device__ __forceinline__ void load_tile(T* tile, const T* head, int64_t ld, int row0, int t) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static_assert((ROWS * kChunks) % THREADS == 0, "whole copy rounds");
#pragma unroll
  for (int i = 0; i < ROWS * kChunks / THREADS; i++) {
    const int c = i * THREADS + int(threadIdx.x), r = c / kChunks, col = (c % kChunks) * 8;
    const bool ok = row0 + r < t;
    const T* src = ok ? head + int64_t(row0 + r) * ld + col : head;
    cp_async16(smem_u32(tile + swz<D>(r, col)), src, ok);
  }
}

// A fragments (16 rows from row0, all D columns, as D/16 k-steps) of a tile, into registers.
template <int D, typename T>
__device__ __forceinline__ void load_a_frags(uint32_t (&f)[D / 16][4], const T* tile, int row0,
                                             int lane) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ks++)
    ldsm_x4(f[ks], smem_u32(tile + swz<D>(row0 + (lane & 15), ks * 16 + (lane >> 4) * 8)));
}

// acc[16 x N] += A[16 x D] · Bᵀ with B a [N][D] tile (rows n0 + 0..N-1): the "row·row" product
// of scores (Q·Kᵀ, dO·Vᵀ, K·Qᵀ, V·dOᵀ). A comes from registers (a) or from a tile (a_tile).
template <int N, int D, typename T>
__device__ __forceinline__ void mma_abt(float (&acc)[N / 8][4], const uint32_t (&a)[D / 16][4],
                                        const T* b_tile, int lane) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ks++)
#pragma unroll
    for (int n2 = 0; n2 < N / 16; n2++) {
      uint32_t b[4];  // n-tiles 2·n2 (b[0], b[1]) and 2·n2 + 1 (b[2], b[3])
      ldsm_x4(b, smem_u32(b_tile + swz<D>(n2 * 16 + (lane & 7) + (lane >> 4) * 8,
                                          ks * 16 + ((lane >> 3) & 1) * 8)));
      mma16816<T>(acc[2 * n2], a[ks], b[0], b[1]);
      mma16816<T>(acc[2 * n2 + 1], a[ks], b[2], b[3]);
    }
}
template <int N, int D, typename T>
__device__ __forceinline__ void mma_abt_smem(float (&acc)[N / 8][4], const T* a_tile, int row0,
                                             const T* b_tile, int lane) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ks++) {
    uint32_t a[4];
    ldsm_x4(a, smem_u32(a_tile + swz<D>(row0 + (lane & 15), ks * 16 + (lane >> 4) * 8)));
#pragma unroll
    for (int n2 = 0; n2 < N / 16; n2++) {
      uint32_t b[4];
      ldsm_x4(b, smem_u32(b_tile + swz<D>(n2 * 16 + (lane & 7) + (lane >> 4) * 8,
                                          ks * 16 + ((lane >> 3) & 1) * 8)));
      mma16816<T>(acc[2 * n2], a, b[0], b[1]);
      mma16816<T>(acc[2 * n2 + 1], a, b[2], b[3]);
    }
  }
}

// A fragments of P[16 x K] given as the f32 accumulator of a [16 x K] product: its layout is
// the A fragment's, two n-tiles per k-step.
template <int K, typename T>
__device__ __forceinline__ void pack_a(uint32_t (&a)[K / 16][4], const float (&p)[K / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < K / 16; kk++) {
    a[kk][0] = pack2<T>(p[2 * kk][0], p[2 * kk][1]);
    a[kk][1] = pack2<T>(p[2 * kk][2], p[2 * kk][3]);
    a[kk][2] = pack2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[kk][3] = pack2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
  }
}
// Element e of n-tile nt of a packed [16 x K] A fragment, back in f32.
template <int K, typename T>
__device__ __forceinline__ float a_elem(const uint32_t (&a)[K / 16][4], int nt, int e) {
  const float2 v = unpack2(a[nt >> 1][(nt & 1) * 2 + (e >> 1)], T{});
  return e & 1 ? v.y : v.x;
}

// acc[16 x D] += P[16 x K] · B with B a [K][D] tile and P packed by pack_a: P·V, dS·K, Pᵀ·dO,
// dSᵀ·Q.
template <int K, int D, typename T>
__device__ __forceinline__ void mma_pb(float (&acc)[D / 8][4], const uint32_t (&a)[K / 16][4],
                                       const T* b_tile, int lane) {
#pragma unroll
  for (int kk = 0; kk < K / 16; kk++)
#pragma unroll
    for (int d2 = 0; d2 < D / 16; d2++) {
      uint32_t b[4];  // d-tiles 2·d2 (b[0], b[1]) and 2·d2 + 1 (b[2], b[3])
      ldsm_x4_trans(b, smem_u32(b_tile + swz<D>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                d2 * 16 + (lane >> 4) * 8)));
      mma16816<T>(acc[2 * d2], a[kk], b[0], b[1]);
      mma16816<T>(acc[2 * d2 + 1], a[kk], b[2], b[3]);
    }
}
// The same with P as an f32 accumulator.
template <int K, int D, typename T>
__device__ __forceinline__ void mma_pb(float (&acc)[D / 8][4], const float (&p)[K / 8][4],
                                       const T* b_tile, int lane) {
  uint32_t a[K / 16][4];
  pack_a<K, T>(a, p);
  mma_pb<K, D>(acc, a, b_tile, lane);
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
}

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Writes (acc·mul) of a thread's two rows to global rows (row stride ld), `add` to what is there.
template <int D, typename T>
__device__ __forceinline__ void store_rows(T* head, int64_t ld, int row_a, int t,
                                           const float (&acc)[D / 8][4], float mul, bool add,
                                           int lane) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = row_a + 8 * r;
    if (row >= t) continue;
    T* dst = head + int64_t(row) * ld + 2 * (lane & 3);
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++) {
      uint32_t* p = reinterpret_cast<uint32_t*>(dst + dt * 8);
      float lo = acc[dt][2 * r] * mul, hi = acc[dt][2 * r + 1] * mul;
      if (add) {
        const float2 old = unpack2(*p, T{});
        lo += old.x;
        hi += old.y;
      }
      *p = pack2<T>(lo, hi);
    }
  }
}

struct FwdArgs {
  const void *q, *k, *v;
  void* o;
  float* lse;
  int t, h;
  float scale_log2;  // softmax scale · log2 e
};

struct BwdArgs {
  const void *q, *k, *v, *dout;
  const float *lse, *dvec;  // natural-log lse and D = rowsum(dO∘O), [B, H, T]
  void *dq, *dk, *dv;
  int t, h;
  float scale, scale_log2;
};

// ---- Host side ----------------------------------------------------------------------------

// Calls fn(T{}, std::integral_constant<int, D>{}) for the supported dtypes and head dims.
template <typename Fn>
void dispatch_flash(const char* op, const Tensor& q, Fn&& fn) {
  const int64_t d = q.size(3);
  auto with_d = [&](auto z) {
    if (d == 64) return fn(z, std::integral_constant<int, 64>{});
    if (d == 128) return fn(z, std::integral_constant<int, 128>{});
    user_error(
        "{}: model.attention: flash supports head_dim 64 or 128, got {}; use "
        "model.attention: reference",
        op, d);
  };
  switch (q.dtype()) {
    case DType::bf16:
      return with_d(__nv_bfloat16{});
    case DType::f16:
      return with_d(__half{});
    default:
      user_error(
          "{}: model.attention: flash takes bf16 or f16 inputs, got {}; use "
          "model.attention: reference",
          op, dtype_name(q.dtype()));
  }
}

// What the kernels assume beyond the op's checks: Tq == Tk, 16-byte aligned rows, grid limits.
inline void check_layout(const char* op, std::initializer_list<const Tensor*> ts, const Tensor& q,
                         const Tensor& k) {
  if (q.size(1) != k.size(1))
    throw Error(fmt::format("{}: model.attention: flash needs Tq == Tk, got {} and {}", op,
                            q.size(1), k.size(1)));
  for (const Tensor* t : ts)
    if (reinterpret_cast<uintptr_t>(t->raw()) % 16 != 0)
      throw Error(fmt::format("{}: model.attention: flash needs 16-byte aligned tensors", op));
  if (q.size(0) * q.size(2) > 65535 || q.size(1) > (int64_t(1) << 30))
    throw Error(
        fmt::format("{}: batch x heads {} or length {} too large for model.attention: "
                    "flash",
                    op, q.size(0) * q.size(2), q.size(1)));
}

template <typename K>
void allow_smem(K kernel, size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}
}  // namespace spectra::kernels::cuda::flash
