// model.attention: flash, the forward pass (kernels/cuda/flash_common.cuh: the tiles, the warp
// mapping and the tensor-core wrappers both passes share).
//
// Forward: a block owns Br = 128 queries of one (batch, head), 8 warps × 16 rows, and walks key
// blocks of Bc = 64 up to the diagonal (kernels/attention_blocks.h). Q fragments stay in
// registers; S = Q·Kᵀ, an online softmax in base 2 (scores prescaled by scale·log2 e) that
// rescales both the output accumulator and the running sum, O += P·V. lse is stored in natural
// log. Query blocks are launched last-first (the longest ones start first).
#include "kernels/cuda/attention_impls.h"
#include "kernels/cuda/flash_common.cuh"

namespace spectra::kernels::cuda {

namespace {
using namespace flash;
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

}  // namespace spectra::kernels::cuda
