// Causal attention, flash-style (Dao et al. 2022): tiles of queries and keys in shared memory,
// an online softmax, and no T×T matrix in device memory. f32 math on the CUDA cores (a first,
// correct version; tensor-core tiles are the next step). Head dims 32, 64 and 128.
//
// Forward: a block owns 64 queries of one (batch, head); 4 threads per query row, each holding a
// quarter of the output row (dims i·4 + lane) and 16 of the 64 scores of a key tile.
// Backward (deterministic, no atomics): D = rowsum(dO∘O) first; then one kernel per key tile
// accumulates dK, dV over the query tiles at or after it, and one per query tile accumulates dQ
// over the key tiles up to it. Both recompute P = exp(S − lse) from the saved lse.
#include "kernels/attention.h"
#include "kernels/cuda/attention_impls.h"
#include "kernels/cuda/common.cuh"

namespace spectra::kernels::cuda {

namespace {

constexpr int kFwdTile = 64, kFwdThreads = 256;  // 64 query rows x 4 threads
constexpr int kBwdTile = 32, kBwdThreads = 128;  // 32 rows x 4 threads

struct Shape4 {
  int b, tq, tk, h;
  // Offset of (batch, token, head) in a [B, T, H, D] tensor with T tokens.
  __device__ int64_t at(int bi, int t, int hi, int T, int D) const {
    return ((int64_t(bi) * T + t) * h + hi) * D;
  }
};

// Loads rows [row0, row0 + rows) of one head into smem[rows][D + 1] (f32; zero past `limit`).
template <typename T, int D>
__device__ void load_tile(float* smem, const T* src, const Shape4& s, int bi, int hi, int row0,
                          int rows, int T_, int limit, float mul) {
  for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
    int r = idx / D, d = idx % D, row = row0 + r;
    smem[r * (D + 1) + d] = row < limit ? to_f32(src[s.at(bi, row, hi, T_, D) + d]) * mul : 0.f;
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kFwdThreads)
    attn_fwd(const T* q, const T* k, const T* v, T* o, float* lse, Shape4 s, float scale) {
  extern __shared__ float sm[];
  constexpr int B = kFwdTile, P = D + 1;
  float *Qs = sm, *Ks = Qs + B * P, *Vs = Ks + B * P, *Ps = Vs + B * P;  // Ps: [B][B + 1]
  const int bi = blockIdx.y / s.h, hi = blockIdx.y % s.h, q0 = blockIdx.x * B;
  const int r = threadIdx.x / 4, lane4 = threadIdx.x % 4, offset = s.tk - s.tq;
  const int qpos = offset + q0 + r;  // this row's position among the keys
  load_tile<T, D>(Qs, q, s, bi, hi, q0, B, s.tq, s.tq, scale);  // pre-scaled queries
  float m = -INFINITY, l = 0.f, acc[D / 4];
#pragma unroll
  for (int i = 0; i < D / 4; i++) acc[i] = 0.f;
  const int last_key = offset + min(q0 + B, s.tq) - 1;
  for (int k0 = 0; k0 <= last_key; k0 += B) {
    __syncthreads();
    load_tile<T, D>(Ks, k, s, bi, hi, k0, B, s.tk, s.tk, 1.f);
    load_tile<T, D>(Vs, v, s, bi, hi, k0, B, s.tk, s.tk, 1.f);
    __syncthreads();
    float sc[B / 4], mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < B / 4; j++) {
      const int c = lane4 + 4 * j, key = k0 + c;
      float dot = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; d++) dot += Qs[r * P + d] * Ks[c * P + d];
      sc[j] = (key <= qpos && key < s.tk) ? dot : -INFINITY;
      mx = fmaxf(mx, sc[j]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m, mx);
    // A row with every key masked so far (only rows past the end) keeps m = -inf: skip it.
    const float alpha = m_new == -INFINITY ? 1.f : __expf(m - m_new);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < B / 4; j++) {
      float p = m_new == -INFINITY ? 0.f : __expf(sc[j] - m_new);
      Ps[r * (B + 1) + lane4 + 4 * j] = p;
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    l = l * alpha + sum;
    m = m_new;
    __syncwarp();  // the row's 4 threads share a warp
#pragma unroll
    for (int i = 0; i < D / 4; i++) acc[i] *= alpha;
    for (int c = 0; c < B; c++) {
      const float p = Ps[r * (B + 1) + c];
#pragma unroll
      for (int i = 0; i < D / 4; i++) acc[i] += p * Vs[c * P + i * 4 + lane4];
    }
  }
  const int row = q0 + r;
  if (row < s.tq) {
    T* orow = o + s.at(bi, row, hi, s.tq, D);
#pragma unroll
    for (int i = 0; i < D / 4; i++) orow[i * 4 + lane4] = from_f32<T>(acc[i] / l);
    if (lane4 == 0) lse[(int64_t(bi) * s.h + hi) * s.tq + row] = m + logf(l);
  }
}

// D[b, h, t] = Σ_d dO·O, one warp per (token, head).
template <typename T, int D>
__global__ void attn_bwd_rowdot(const T* dout, const T* o, float* dvec, Shape4 s) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (w >= int64_t(s.b) * s.tq * s.h) return;
  const int hi = int(w % s.h), t = int((w / s.h) % s.tq), bi = int(w / (int64_t(s.h) * s.tq));
  const int64_t base = s.at(bi, t, hi, s.tq, D);
  float acc = 0.f;
  for (int d = lane; d < D; d += 32) acc += to_f32(dout[base + d]) * to_f32(o[base + d]);
  acc = warp_sum(acc);
  if (lane == 0) dvec[(int64_t(bi) * s.h + hi) * s.tq + t] = acc;
}

// The gradient of one score: P and dS for query row r (tile rows Qs, dOs) and key row c.
template <int D>
__device__ void score_grads(const float* Qs, const float* dOs, const float* Ks, const float* Vs,
                            int r, int c, bool valid, float lse_r, float d_r, float scale, float& p,
                            float& ds) {
  constexpr int P = D + 1;
  if (!valid) {
    p = ds = 0.f;
    return;
  }
  float dot = 0.f, dp = 0.f;
#pragma unroll 8
  for (int d = 0; d < D; d++) {
    dot += Qs[r * P + d] * Ks[c * P + d];
    dp += dOs[r * P + d] * Vs[c * P + d];
  }
  p = __expf(dot * scale - lse_r);
  ds = p * (dp - d_r) * scale;
}

template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads)
    attn_bwd_dkdv(const T* q, const T* k, const T* v, const T* dout, const float* lse,
                  const float* dvec, T* dk, T* dv, Shape4 s, float scale) {
  extern __shared__ float sm[];
  constexpr int B = kBwdTile, P = D + 1;
  float *Qs = sm, *dOs = Qs + B * P, *Ks = dOs + B * P, *Vs = Ks + B * P, *Ps = Vs + B * P,
        *dSs = Ps + B * (B + 1);
  float* stats = dSs + B * (B + 1);  // lse[B], D[B]
  const int bi = blockIdx.y / s.h, hi = blockIdx.y % s.h, k0 = blockIdx.x * B, t = s.tq;
  const int c = threadIdx.x / 4, lane4 = threadIdx.x % 4, key = k0 + c;
  load_tile<T, D>(Ks, k, s, bi, hi, k0, B, t, t, 1.f);
  load_tile<T, D>(Vs, v, s, bi, hi, k0, B, t, t, 1.f);
  float adk[D / 4], adv[D / 4];
#pragma unroll
  for (int i = 0; i < D / 4; i++) adk[i] = adv[i] = 0.f;
  const int64_t stat0 = (int64_t(bi) * s.h + hi) * t;
  for (int i0 = k0; i0 < t; i0 += B) {  // query tiles at or after this key tile (causal)
    __syncthreads();
    load_tile<T, D>(Qs, q, s, bi, hi, i0, B, t, t, 1.f);
    load_tile<T, D>(dOs, dout, s, bi, hi, i0, B, t, t, 1.f);
    for (int r = threadIdx.x; r < B; r += blockDim.x) {
      stats[r] = i0 + r < t ? lse[stat0 + i0 + r] : 0.f;
      stats[B + r] = i0 + r < t ? dvec[stat0 + i0 + r] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < B / 4; j++) {
      const int r = lane4 + 4 * j, i = i0 + r;
      float p, ds;
      score_grads<D>(Qs, dOs, Ks, Vs, r, c, i < t && key < t && key <= i, stats[r], stats[B + r],
                     scale, p, ds);
      Ps[r * (B + 1) + c] = p;
      dSs[r * (B + 1) + c] = ds;
    }
    __syncwarp();  // column c was written by this warp's 4 threads of c
    for (int r = 0; r < B; r++) {
      const float p = Ps[r * (B + 1) + c], ds = dSs[r * (B + 1) + c];
#pragma unroll
      for (int i = 0; i < D / 4; i++) {
        adv[i] += p * dOs[r * P + i * 4 + lane4];
        adk[i] += ds * Qs[r * P + i * 4 + lane4];
      }
    }
  }
  if (key < t) {
    const int64_t base = s.at(bi, key, hi, t, D);
#pragma unroll
    for (int i = 0; i < D / 4; i++) {
      const int d = i * 4 + lane4;
      dk[base + d] = from_f32<T>(to_f32(dk[base + d]) + adk[i]);
      dv[base + d] = from_f32<T>(to_f32(dv[base + d]) + adv[i]);
    }
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads)
    attn_bwd_dq(const T* q, const T* k, const T* v, const T* dout, const float* lse,
                const float* dvec, T* dq, Shape4 s, float scale) {
  extern __shared__ float sm[];
  constexpr int B = kBwdTile, P = D + 1;
  float *Qs = sm, *dOs = Qs + B * P, *Ks = dOs + B * P, *Vs = Ks + B * P, *dSs = Vs + B * P;
  const int bi = blockIdx.y / s.h, hi = blockIdx.y % s.h, i0 = blockIdx.x * B, t = s.tq;
  const int r = threadIdx.x / 4, lane4 = threadIdx.x % 4, i = i0 + r;
  load_tile<T, D>(Qs, q, s, bi, hi, i0, B, t, t, 1.f);
  load_tile<T, D>(dOs, dout, s, bi, hi, i0, B, t, t, 1.f);
  const int64_t stat = (int64_t(bi) * s.h + hi) * t + i;
  const float lse_r = i < t ? lse[stat] : 0.f, d_r = i < t ? dvec[stat] : 0.f;
  float acc[D / 4];
#pragma unroll
  for (int x = 0; x < D / 4; x++) acc[x] = 0.f;
  const int last = min(i0 + B, t) - 1;
  for (int k0 = 0; k0 <= last; k0 += B) {  // key tiles up to the diagonal
    __syncthreads();
    load_tile<T, D>(Ks, k, s, bi, hi, k0, B, t, t, 1.f);
    load_tile<T, D>(Vs, v, s, bi, hi, k0, B, t, t, 1.f);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < B / 4; j++) {
      const int c = lane4 + 4 * j, key = k0 + c;
      float p, ds;
      score_grads<D>(Qs, dOs, Ks, Vs, r, c, i < t && key <= i, lse_r, d_r, scale, p, ds);
      dSs[r * (B + 1) + c] = ds;
    }
    __syncwarp();
    for (int c = 0; c < B; c++) {
      const float ds = dSs[r * (B + 1) + c];
#pragma unroll
      for (int x = 0; x < D / 4; x++) acc[x] += ds * Ks[c * P + x * 4 + lane4];
    }
  }
  if (i < t) {
    const int64_t base = s.at(bi, i, hi, t, D);
#pragma unroll
    for (int x = 0; x < D / 4; x++)
      dq[base + x * 4 + lane4] = from_f32<T>(to_f32(dq[base + x * 4 + lane4]) + acc[x]);
  }
}

// Calls fn(std::integral_constant<int, D>) for a supported head dim.
template <typename Fn>
void dispatch_head_dim(const char* op, int64_t d, Fn&& fn) {
  switch (d) {
    case 32:
      return fn(std::integral_constant<int, 32>{});
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
    default:
      throw Error(fmt::format("{}: head_dim {} unsupported on CUDA (32, 64 or 128)", op, d));
  }
}

// Raises a kernel's dynamic shared-memory limit once (above 48 KB needs an opt-in).
template <typename K>
void allow_smem(K kernel, size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

Shape4 dims(const Tensor& q, const Tensor& k) {
  return {int(q.size(0)), int(q.size(1)), int(k.size(1)), int(q.size(2))};
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& o,
                       Tensor& lse, AttentionImpl impl) {
  if (impl == AttentionImpl::flash) return flash_attention_forward(q, k, v, scale, o, lse);
  if (impl == AttentionImpl::cudnn) return cudnn_attention_forward(q, k, v, scale, o, lse);
  Shape4 s = dims(q, k);
  if (q.numel() == 0) return;
  dispatch_act("attention_forward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    dispatch_head_dim("attention_forward", q.size(3), [&](auto dc) {
      constexpr int D = decltype(dc)::value;
      const size_t smem = sizeof(float) * (3 * kFwdTile * (D + 1) + kFwdTile * (kFwdTile + 1));
      allow_smem(attn_fwd<T, D>, smem);
      dim3 grid(unsigned((s.tq + kFwdTile - 1) / kFwdTile), unsigned(s.b * s.h));
      attn_fwd<T, D><<<grid, kFwdThreads, smem, stream()>>>(
          static_cast<const T*>(q.raw()), static_cast<const T*>(k.raw()),
          static_cast<const T*>(v.raw()), static_cast<T*>(o.raw()), lse.data<float>(), s, scale);
    });
  });
  CUDA_CHECK_LAUNCH("attention_forward");
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv, AttentionImpl impl) {
  if (impl == AttentionImpl::flash)
    return flash_attention_backward(dout, q, k, v, o, lse, scale, dq, dk, dv);
  if (impl == AttentionImpl::cudnn)
    return cudnn_attention_backward(dout, q, k, v, o, lse, scale, dq, dk, dv);
  Shape4 s = dims(q, k);  // Tq == Tk
  if (q.numel() == 0) return;
  Tensor dvec = scratch({int64_t(s.b) * s.h * s.tq});
  dispatch_act("attention_backward", q.dtype(), [&](auto z) {
    using T = decltype(z);
    dispatch_head_dim("attention_backward", q.size(3), [&](auto dc) {
      constexpr int D = decltype(dc)::value;
      const T *qp = static_cast<const T*>(q.raw()), *kp = static_cast<const T*>(k.raw());
      const T *vp = static_cast<const T*>(v.raw()), *dop = static_cast<const T*>(dout.raw());
      const int64_t rows = int64_t(s.b) * s.tq * s.h;
      attn_bwd_rowdot<T, D><<<blocks_for(rows * 32, 256), 256, 0, stream()>>>(
          dop, static_cast<const T*>(o.raw()), dvec.data<float>(), s);
      const size_t tile = size_t(kBwdTile) * (D + 1), pad = size_t(kBwdTile) * (kBwdTile + 1);
      const size_t smem_kv = sizeof(float) * (4 * tile + 2 * pad + 2 * kBwdTile);
      const size_t smem_q = sizeof(float) * (4 * tile + pad);
      allow_smem(attn_bwd_dkdv<T, D>, smem_kv);
      allow_smem(attn_bwd_dq<T, D>, smem_q);
      dim3 grid(unsigned((s.tq + kBwdTile - 1) / kBwdTile), unsigned(s.b * s.h));
      attn_bwd_dkdv<T, D><<<grid, kBwdThreads, smem_kv, stream()>>>(
          qp, kp, vp, dop, lse.data<float>(), dvec.data<float>(), static_cast<T*>(dk.raw()),
          static_cast<T*>(dv.raw()), s, scale);
      attn_bwd_dq<T, D><<<grid, kBwdThreads, smem_q, stream()>>>(
          qp, kp, vp, dop, lse.data<float>(), dvec.data<float>(), static_cast<T*>(dq.raw()), s,
          scale);
    });
  });
  CUDA_CHECK_LAUNCH("attention_backward");
}

}  // namespace spectra::kernels::cuda
