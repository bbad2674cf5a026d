// model.attention: flash — causal attention on the tensor cores, FlashAttention-2 style
// (Dao 2023), for bf16 and f16 with head_dim 64 or 128 and Tq == Tk.
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
//
// Forward: a block owns Br = 128 queries of one (batch, head), 8 warps × 16 rows, and walks key
// blocks of Bc = 64 up to the diagonal (kernels/attention_blocks.h). Q fragments stay in
// registers; S = Q·Kᵀ, an online softmax in base 2 (scores prescaled by scale·log2 e) that
// rescales both the output accumulator and the running sum, O += P·V. lse is stored in natural
// log. Query blocks are launched last-first (the longest ones start first).
//
// Backward (deterministic, no atomics: the same inputs give the same bits):
//  1. D = rowsum(dO∘O) per query, f32.
//  2. dK/dV: a block owns Bc = 64 keys (4 warps × 16 keys) and walks the query blocks
//     (Br = 64) at or after them, computing the transposed products Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ,
//     Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e), dSᵀ = Pᵀ∘(dPᵀ − D), then dV += Pᵀ·dO and
//     dK += dSᵀ·Q with the accumulators in registers for the whole walk.
//  3. dQ: a separate pass, a block per 64 queries (4 warps × 16 rows) walking key blocks up to
//     the diagonal like the forward: S, dP = dO·Vᵀ, dS, dQ += dS·K in f32 registers. It
//     recomputes S and dP (7 matrix products instead of 5) in exchange for a fixed summation
//     order and no f32 scratch.
// Gradients are accumulated into dq, dk, dv (read, add in f32, round once, write).
#include <cstdint>

#include "core/error.h"
#include "kernels/attention_blocks.h"
#include "kernels/cuda/attention_impls.h"
#include "kernels/cuda/common.cuh"

namespace spectra::kernels::cuda {

namespace {

namespace ab = spectra::kernels::attn_blocks;

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

constexpr int kFwdBr = 128, kFwdBc = 64, kFwdThreads = 256;  // 8 warps
constexpr int kBwdBr = 64, kBwdBc = 64, kBwdThreads = 128;   // 4 warps
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

// ---- Forward ------------------------------------------------------------------------------

template <typename T, int D>
__global__ void __launch_bounds__(kFwdThreads, 1) flash_fwd_kernel(FwdArgs a) {
  constexpr int Br = kFwdBr, Bc = kFwdBc;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // [Br][D]
  T* sK = sQ + Br * D;                 // [2][Bc][D]
  T* sV = sK + 2 * Bc * D;             // [2][Bc][D]
  const int lane = threadIdx.x & 31, row_w = (threadIdx.x >> 5) * 16, g = lane >> 2;
  const int qb = ab::cdiv(a.t, Br) - 1 - int(blockIdx.x), q0 = qb * Br;
  const int bi = blockIdx.y / a.h, hi = blockIdx.y % a.h;
  const int64_t ld = int64_t(a.h) * D, head = (int64_t(bi) * a.t * a.h + hi) * D;
  const T *Q = static_cast<const T*>(a.q) + head, *K = static_cast<const T*>(a.k) + head,
          *V = static_cast<const T*>(a.v) + head;
  const int nkb = ab::key_blocks_for_query_block(qb, Br, Bc, a.t);
  const int first_masked = ab::first_masked_key_block(qb, Br, Bc);

  load_tile<Br, D, kFwdThreads>(sQ, Q, ld, q0, a.t);
  load_tile<Bc, D, kFwdThreads>(sK, K, ld, 0, a.t);
  load_tile<Bc, D, kFwdThreads>(sV, V, ld, 0, a.t);
  cp_async_commit();

  uint32_t qf[D / 16][4];
  float o[D / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  zero(o);
  for (int j = 0; j < nkb; j++) {
    const int st = j & 1;
    if (j + 1 < nkb) {  // prefetch the next key block into the other stage
      load_tile<Bc, D, kFwdThreads>(sK + (st ^ 1) * Bc * D, K, ld, (j + 1) * Bc, a.t);
      load_tile<Bc, D, kFwdThreads>(sV + (st ^ 1) * Bc * D, V, ld, (j + 1) * Bc, a.t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) load_a_frags<D>(qf, sQ, row_w, lane);

    float s[Bc / 8][4];  // this warp's 16 x Bc scores; later P
    zero(s);
    mma_abt<Bc, D>(s, qf, sK + st * Bc * D, lane);

    const bool masked = j >= first_masked;
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < Bc / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float x = s[nt][e] * a.scale_log2;
        const int query = q0 + row_w + g + 8 * (e >> 1), key = j * Bc + nt * 8 + 2 * (lane & 3);
        if (masked && ab::causal_masked(query, key + (e & 1))) x = -INFINITY;
        s[nt][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    float base[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = quad_max(mx[r]);
      base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // a row with nothing visible yet: no NaN
      const float alpha = exp2f(m[r] - base[r]);   // 0 on the first visible block
      m[r] = mx[r];
      l[r] *= alpha;
#pragma unroll
      for (int dt = 0; dt < D / 8; dt++) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }
#pragma unroll
    for (int nt = 0; nt < Bc / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        s[nt][e] = exp2f(s[nt][e] - base[e >> 1]);
        sum[e >> 1] += s[nt][e];
      }
    l[0] += sum[0];  // partial over this thread's columns; the quad sums once at the end
    l[1] += sum[1];
    mma_pb<Bc, D>(o, s, sV + st * Bc * D, lane);
    __syncthreads();  // the next iteration refills this stage
  }

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const float sum = quad_sum(l[r]);
    inv[r] = sum > 0.f ? 1.f / sum : 0.f;
    const int row = q0 + row_w + g + 8 * r;
    if ((lane & 3) == 0 && row < a.t)
      a.lse[(int64_t(bi) * a.h + hi) * a.t + row] =
          sum > 0.f ? (m[r] + log2f(sum)) * kLn2 : -INFINITY;
  }
#pragma unroll
  for (int dt = 0; dt < D / 8; dt++) {
    o[dt][0] *= inv[0];
    o[dt][1] *= inv[0];
    o[dt][2] *= inv[1];
    o[dt][3] *= inv[1];
  }
  store_rows<D>(static_cast<T*>(a.o) + head, ld, q0 + row_w + g, a.t, o, 1.f, false, lane);
}

// ---- Backward -----------------------------------------------------------------------------

// D[b, h, t] = Σ_d dO·O in f32: one warp per (batch, token, head) row.
template <typename T, int D>
__global__ void flash_bwd_rowdot_kernel(const T* dout, const T* o, float* dvec, int64_t rows, int t,
                                        int h) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= rows) return;  // whole warps leave together
  const uint32_t* a = reinterpret_cast<const uint32_t*>(dout + w * D);
  const uint32_t* b = reinterpret_cast<const uint32_t*>(o + w * D);
  float acc = 0.f;
#pragma unroll
  for (int i = lane; i < D / 2; i += 32) {
    const float2 x = unpack2(a[i], T{}), y = unpack2(b[i], T{});
    acc += x.x * y.x + x.y * y.y;
  }
  acc = warp_sum(acc);
  const int hi = int(w % h), ti = int((w / h) % t);
  const int64_t bi = w / (int64_t(h) * t);
  if (lane == 0) dvec[(bi * h + hi) * t + ti] = acc;
}

// dK, dV of Bc keys: the walk over the query blocks that see them.
template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads) flash_bwd_dkdv_kernel(BwdArgs a) {
  constexpr int Br = dkdv_query_block(D), Bc = kBwdBc;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);                      // [Bc][D]
  T* sV = sK + Bc * D;                                     // [Bc][D]
  T* sQ = sV + Bc * D;                                     // [2][Br][D]
  T* sdO = sQ + 2 * Br * D;                                // [2][Br][D]
  float* sL = reinterpret_cast<float*>(sdO + 2 * Br * D);  // [2][Br] lse · log2 e
  float* sD = sL + 2 * Br;                                 // [2][Br] D
  const int lane = threadIdx.x & 31, row_w = (threadIdx.x >> 5) * 16, g = lane >> 2;
  const int kb = blockIdx.x, k0 = kb * Bc;
  const int bi = blockIdx.y / a.h, hi = blockIdx.y % a.h;
  const int64_t ld = int64_t(a.h) * D, head = (int64_t(bi) * a.t * a.h + hi) * D;
  const int64_t stat0 = (int64_t(bi) * a.h + hi) * a.t;
  const T *Q = static_cast<const T*>(a.q) + head, *K = static_cast<const T*>(a.k) + head,
          *V = static_cast<const T*>(a.v) + head, *dO = static_cast<const T*>(a.dout) + head;
  const int nqb = ab::cdiv(a.t, Br), first = ab::first_query_block(kb, Bc, Br);
  const int unmasked = ab::first_unmasked_query_block(kb, Bc, Br);

  // Stage st of the query side: Q, dO tiles and the two per-query statistics.
  auto load_query_block = [&](int i, int st) {
    load_tile<Br, D, kBwdThreads>(sQ + st * Br * D, Q, ld, i * Br, a.t);
    load_tile<Br, D, kBwdThreads>(sdO + st * Br * D, dO, ld, i * Br, a.t);
    for (int r = threadIdx.x; r < Br; r += kBwdThreads) {
      const int query = i * Br + r;  // past the end: P = exp2(x − ∞) = 0, so no contribution
      sL[st * Br + r] = query < a.t ? a.lse[stat0 + query] * kLog2e : INFINITY;
      sD[st * Br + r] = query < a.t ? a.dvec[stat0 + query] : 0.f;
    }
  };
  load_tile<Bc, D, kBwdThreads>(sK, K, ld, k0, a.t);
  load_tile<Bc, D, kBwdThreads>(sV, V, ld, k0, a.t);
  load_query_block(first, 0);
  cp_async_commit();

  float dk[D / 8][4], dv[D / 8][4];
  zero(dk);
  zero(dv);
  for (int i = first; i < nqb; i++) {
    const int st = (i - first) & 1;
    if (i + 1 < nqb) {
      load_query_block(i + 1, st ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T *q_s = sQ + st * Br * D, *do_s = sdO + st * Br * D;
    const float *l_s = sL + st * Br, *d_s = sD + st * Br;

    // Pᵀ first, kept packed (16-bit) while dPᵀ is computed: fewer live registers.
    float s[Br / 8][4];  // Sᵀ: this warp's 16 keys x Br queries
    zero(s);
    mma_abt_smem<Br, D>(s, sK, row_w, q_s, lane);
    const bool masked = i < unmasked;
#pragma unroll
    for (int nt = 0; nt < Br / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int qi = nt * 8 + 2 * (lane & 3) + (e & 1), key = k0 + row_w + g + 8 * (e >> 1);
        s[nt][e] = masked && ab::causal_masked(i * Br + qi, key)
                       ? 0.f
                       : exp2f(s[nt][e] * a.scale_log2 - l_s[qi]);
      }
    uint32_t pt[Br / 16][4];
    pack_a<Br, T>(pt, s);
    mma_pb<Br, D>(dv, pt, do_s, lane);

    float dp[Br / 8][4];  // dPᵀ, then dSᵀ (without the softmax scale)
    zero(dp);
    mma_abt_smem<Br, D>(dp, sV, row_w, do_s, lane);
#pragma unroll
    for (int nt = 0; nt < Br / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int qi = nt * 8 + 2 * (lane & 3) + (e & 1);
        dp[nt][e] = a_elem<Br, T>(pt, nt, e) * (dp[nt][e] - d_s[qi]);
      }
    mma_pb<Br, D>(dk, dp, q_s, lane);
    __syncthreads();  // the next iteration refills this stage
  }
  store_rows<D>(static_cast<T*>(a.dk) + head, ld, k0 + row_w + g, a.t, dk, a.scale, true, lane);
  store_rows<D>(static_cast<T*>(a.dv) + head, ld, k0 + row_w + g, a.t, dv, 1.f, true, lane);
}

// dQ of Br queries: the walk over the key blocks up to the diagonal.
template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads) flash_bwd_dq_kernel(BwdArgs a) {
  constexpr int Br = kBwdBr, Bc = kBwdBc;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // [Br][D]
  T* sdO = sQ + Br * D;                // [Br][D]
  T* sK = sdO + Br * D;                // [2][Bc][D]
  T* sV = sK + 2 * Bc * D;             // [2][Bc][D]
  const int lane = threadIdx.x & 31, row_w = (threadIdx.x >> 5) * 16, g = lane >> 2;
  const int qb = ab::cdiv(a.t, Br) - 1 - int(blockIdx.x), q0 = qb * Br;
  const int bi = blockIdx.y / a.h, hi = blockIdx.y % a.h;
  const int64_t ld = int64_t(a.h) * D, head = (int64_t(bi) * a.t * a.h + hi) * D;
  const int64_t stat0 = (int64_t(bi) * a.h + hi) * a.t;
  const T *Q = static_cast<const T*>(a.q) + head, *K = static_cast<const T*>(a.k) + head,
          *V = static_cast<const T*>(a.v) + head, *dO = static_cast<const T*>(a.dout) + head;
  const int nkb = ab::key_blocks_for_query_block(qb, Br, Bc, a.t);
  const int first_masked = ab::first_masked_key_block(qb, Br, Bc);

  load_tile<Br, D, kBwdThreads>(sQ, Q, ld, q0, a.t);
  load_tile<Br, D, kBwdThreads>(sdO, dO, ld, q0, a.t);
  load_tile<Bc, D, kBwdThreads>(sK, K, ld, 0, a.t);
  load_tile<Bc, D, kBwdThreads>(sV, V, ld, 0, a.t);
  cp_async_commit();

  float lse2[2], dd[2];  // this thread's two rows: lse · log2 e and D
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int query = q0 + row_w + g + 8 * r;
    lse2[r] = query < a.t ? a.lse[stat0 + query] * kLog2e : INFINITY;
    dd[r] = query < a.t ? a.dvec[stat0 + query] : 0.f;
  }
  uint32_t qf[D / 16][4];  // Q fragments stay in registers; dO is read from its tile
  float dq[D / 8][4];
  zero(dq);
  for (int j = 0; j < nkb; j++) {
    const int st = j & 1;
    if (j + 1 < nkb) {
      load_tile<Bc, D, kBwdThreads>(sK + (st ^ 1) * Bc * D, K, ld, (j + 1) * Bc, a.t);
      load_tile<Bc, D, kBwdThreads>(sV + (st ^ 1) * Bc * D, V, ld, (j + 1) * Bc, a.t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) load_a_frags<D>(qf, sQ, row_w, lane);
    const T *k_s = sK + st * Bc * D, *v_s = sV + st * Bc * D;

    float s[Bc / 8][4], dp[Bc / 8][4];  // S, dP: this warp's 16 queries x Bc keys
    zero(s);
    zero(dp);
    mma_abt<Bc, D>(s, qf, k_s, lane);
    mma_abt_smem<Bc, D>(dp, sdO, row_w, v_s, lane);

    const bool masked = j >= first_masked;
#pragma unroll
    for (int nt = 0; nt < Bc / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int query = q0 + row_w + g + 8 * (e >> 1),
                  key = j * Bc + nt * 8 + 2 * (lane & 3) + (e & 1);
        const float p = masked && ab::causal_masked(query, key)
                            ? 0.f
                            : exp2f(s[nt][e] * a.scale_log2 - lse2[e >> 1]);
        s[nt][e] = p * (dp[nt][e] - dd[e >> 1]);  // dS (without the softmax scale)
      }
    mma_pb<Bc, D>(dq, s, k_s, lane);
    __syncthreads();
  }
  store_rows<D>(static_cast<T*>(a.dq) + head, ld, q0 + row_w + g, a.t, dq, a.scale, true, lane);
}

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
void check_layout(const char* op, std::initializer_list<const Tensor*> ts, const Tensor& q,
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

}  // namespace

void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                             Tensor& o, Tensor& lse) {
  const char* op = "attention_forward";
  dispatch_flash(op, q, [&](auto z, auto dc) {
    using T = decltype(z);
    constexpr int D = decltype(dc)::value;
    check_layout(op, {&q, &k, &v, &o}, q, k);
    if (q.numel() == 0) return;
    const int t = int(q.size(1)), h = int(q.size(2)), bh = int(q.size(0) * q.size(2));
    FwdArgs args{q.raw(), k.raw(), v.raw(), o.raw(), lse.data<float>(), t, h, scale * kLog2e};
    const size_t smem = sizeof(T) * (kFwdBr + 4 * kFwdBc) * D;
    allow_smem(flash_fwd_kernel<T, D>, smem);
    flash_fwd_kernel<T, D>
        <<<dim3(unsigned(ab::cdiv(t, kFwdBr)), unsigned(bh)), kFwdThreads, smem, stream()>>>(args);
    CUDA_CHECK_LAUNCH(op);
  });
}

void flash_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, float scale, Tensor& dq,
                              Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  dispatch_flash(op, q, [&](auto z, auto dc) {
    using T = decltype(z);
    constexpr int D = decltype(dc)::value;
    check_layout(op, {&dout, &q, &k, &v, &o, &dq, &dk, &dv}, q, k);
    if (q.numel() == 0) return;
    const int t = int(q.size(1)), h = int(q.size(2)), bh = int(q.size(0) * q.size(2));
    Tensor dvec = scratch({int64_t(bh) * t});
    const int64_t rows = int64_t(bh) * t;
    flash_bwd_rowdot_kernel<T, D><<<blocks_for(rows * 32, 256, INT32_MAX), 256, 0, stream()>>>(
        static_cast<const T*>(dout.raw()), static_cast<const T*>(o.raw()), dvec.data<float>(), rows,
        t, h);
    BwdArgs args{q.raw(),
                 k.raw(),
                 v.raw(),
                 dout.raw(),
                 lse.data<float>(),
                 dvec.data<float>(),
                 dq.raw(),
                 dk.raw(),
                 dv.raw(),
                 t,
                 h,
                 scale,
                 scale * kLog2e};
    constexpr int bq = dkdv_query_block(D);
    const size_t smem_kv = sizeof(T) * (2 * kBwdBc + 4 * bq) * D + sizeof(float) * 4 * bq;
    const size_t smem_q = sizeof(T) * (2 * kBwdBr + 4 * kBwdBc) * D;
    allow_smem(flash_bwd_dkdv_kernel<T, D>, smem_kv);
    allow_smem(flash_bwd_dq_kernel<T, D>, smem_q);
    flash_bwd_dkdv_kernel<T, D>
        <<<dim3(unsigned(ab::cdiv(t, kBwdBc)), unsigned(bh)), kBwdThreads, smem_kv, stream()>>>(
            args);
    flash_bwd_dq_kernel<T, D>
        <<<dim3(unsigned(ab::cdiv(t, kBwdBr)), unsigned(bh)), kBwdThreads, smem_q, stream()>>>(
            args);
    CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace spectra::kernels::cuda
