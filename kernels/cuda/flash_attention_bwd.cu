// model.attention: flash, the backward pass (kernels/cuda/flash_common.cuh: the tiles, the warp
// mapping and the tensor-core wrappers both passes share).
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
#include "kernels/cuda/attention_impls.h"
#include "kernels/cuda/flash_common.cuh"

namespace spectra::kernels::cuda {

namespace {
using namespace flash;
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

}  // namespace

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
