// RMSNorm: one block per row for the forward pass and for dx; dg in two deterministic stages
// (per row-chunk partial sums, then a fixed-order sum over chunks), no float atomics.
#include "kernels/cuda/common.cuh"
#include "kernels/rmsnorm.h"

namespace spectra::kernels::cuda {

namespace {
constexpr int kThreads = 256, kRowChunks = 64;

template <typename T, typename G>
__global__ void rmsnorm_fwd(const T* x, const G* g, float eps, T* y, float* rstd, int64_t d) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = to_f32(xr[i]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float rs = rsqrtf(ss / float(d) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    y[r * d + i] = from_f32<T>(to_f32(xr[i]) * rs * to_f32(g[i]));
}

// mean(dy·g·u) over row r, u = x·rstd: every thread of the block gets it.
template <typename T, typename G>
__device__ float row_mean_dyg_u(const T* dy, const T* x, const G* g, float rs, int64_t r, int64_t d,
                                float* scratch) {
  float dot = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    dot += to_f32(dy[r * d + i]) * to_f32(g[i]) * to_f32(x[r * d + i]) * rs;
  return block_sum(dot, scratch) / float(d);
}

// dx += rstd·(dy·g − u·mean(dy·g·u)), u = x·rstd.
template <typename T, typename G>
__global__ void rmsnorm_bwd_dx(const T* dy, const T* x, const G* g, const float* rstd, T* dx,
                               int64_t d) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float rs = rstd[r];
  const float m = row_mean_dyg_u(dy, x, g, rs, r, d, scratch);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    int64_t k = r * d + i;
    float u = to_f32(x[k]) * rs;
    dx[k] = from_f32<T>(to_f32(dx[k]) + rs * (to_f32(dy[k]) * to_f32(g[i]) - u * m));
  }
}

// partial[chunk][i] = Σ_{rows of chunk} dy·x·rstd: grid (column blocks, row chunks).
template <typename T>
__global__ void rmsnorm_bwd_dg_partial(const T* dy, const T* x, const float* rstd, float* partial,
                                       int64_t n, int64_t d) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  const int64_t per = (n + gridDim.y - 1) / gridDim.y, r0 = blockIdx.y * per;
  const int64_t r1 = r0 + per < n ? r0 + per : n;
  float s = 0.f;
  for (int64_t r = r0; r < r1; r++) s += to_f32(dy[r * d + i]) * to_f32(x[r * d + i]) * rstd[r];
  partial[blockIdx.y * d + i] = s;
}

__global__ void rmsnorm_bwd_dg_sum(const float* partial, int chunks, int64_t d, float* dg) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  float s = 0.f;
  for (int c = 0; c < chunks; c++) s += partial[c * d + i];
  dg[i] += s;
}

// h = x + r (rounded to T) and the norm of that rounded h: add + rmsnorm_fwd in one pass.
template <typename T, typename G>
__global__ void add_rmsnorm_fwd(const T* x, const T* r, const G* g, float eps, T* h, T* y,
                                float* rstd, int64_t d) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const int64_t k = row * d + i;
    const T hv = from_f32<T>(to_f32(x[k]) + to_f32(r[k]));
    h[k] = hv;
    ss += to_f32(hv) * to_f32(hv);
  }
  ss = block_sum(ss, scratch);
  const float rs = rsqrtf(ss / float(d) + eps);
  if (threadIdx.x == 0) rstd[row] = rs;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    y[row * d + i] = from_f32<T>(to_f32(h[row * d + i]) * rs * to_f32(g[i]));
}

// t = dh + rstd·(dy·g − u·mean(dy·g·u)), u = h·rstd; dx += t, dr += t.
template <typename T, typename G>
__global__ void add_rmsnorm_bwd(const T* dy, const T* dh, const T* h, const G* g, const float* rstd,
                                T* dx, T* dr, int64_t d) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float rs = rstd[row];
  const float m = row_mean_dyg_u(dy, h, g, rs, row, d, scratch);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const int64_t k = row * d + i;
    const float t = to_f32(dh[k]) + rs * (to_f32(dy[k]) * to_f32(g[i]) - to_f32(h[k]) * rs * m);
    dx[k] = from_f32<T>(to_f32(dx[k]) + t);
    dr[k] = from_f32<T>(to_f32(dr[k]) + t);
  }
}

// dg += Σ_rows dy·x·rstd in the two deterministic stages.
template <typename T>
void rmsnorm_dg(const T* dy, const T* x, const Tensor& rstd, int64_t n, int64_t d, Tensor& dg);

// Calls fn(x's storage type, g's): the gain is f32 or x's dtype (kernels/checks.h).
template <typename Fn>
void dispatch_gain(const char* op, const Tensor& x, const Tensor& g, Fn&& fn) {
  dispatch_act(op, x.dtype(), [&](auto zx) {
    if (g.dtype() == DType::f32)
      fn(zx, float{});
    else
      fn(zx, zx);
  });
}
template <typename T>
void rmsnorm_dg(const T* dy, const T* x, const Tensor& rstd, int64_t n, int64_t d, Tensor& dg) {
  const int chunks = int(n < kRowChunks ? n : kRowChunks);
  Tensor partial = scratch({int64_t(chunks), d});
  dim3 grid(unsigned((d + kThreads - 1) / kThreads), unsigned(chunks));
  rmsnorm_bwd_dg_partial<<<grid, kThreads, 0, stream()>>>(dy, x, rstd.data<float>(),
                                                          partial.data<float>(), n, d);
  rmsnorm_bwd_dg_sum<<<unsigned((d + kThreads - 1) / kThreads), kThreads, 0, stream()>>>(
      partial.data<float>(), chunks, d, dg.data<float>());
}
}  // namespace

void rmsnorm_forward(const Tensor& x, const Tensor& g, float eps, Tensor& y, Tensor& rstd) {
  const int64_t n = rows_of(x), d = x.size(-1);
  if (n == 0) return;
  dispatch_gain("rmsnorm_forward", x, g, [&](auto zx, auto zg) {
    using T = decltype(zx);
    using G = decltype(zg);
    rmsnorm_fwd<<<unsigned(n), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw()), static_cast<const G*>(g.raw()), eps,
        static_cast<T*>(y.raw()), rstd.data<float>(), d);
  });
  CUDA_CHECK_LAUNCH("rmsnorm_forward");
}

void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                      Tensor& dx, Tensor& dg) {
  const int64_t n = rows_of(x), d = x.size(-1);
  if (n == 0) return;
  dispatch_gain("rmsnorm_backward", x, g, [&](auto zx, auto zg) {
    using T = decltype(zx);
    using G = decltype(zg);
    const T *dyp = static_cast<const T*>(dy.raw()), *xp = static_cast<const T*>(x.raw());
    rmsnorm_bwd_dx<<<unsigned(n), kThreads, 0, stream()>>>(
        dyp, xp, static_cast<const G*>(g.raw()), rstd.data<float>(), static_cast<T*>(dx.raw()), d);
    rmsnorm_dg(dyp, xp, rstd, n, d, dg);
  });
  CUDA_CHECK_LAUNCH("rmsnorm_backward");
}

void add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& g, float eps, Tensor& h,
                         Tensor& y, Tensor& rstd) {
  const int64_t n = rows_of(x), d = x.size(-1);
  if (n == 0) return;
  dispatch_gain("add_rmsnorm_forward", x, g, [&](auto zx, auto zg) {
    using T = decltype(zx);
    using G = decltype(zg);
    add_rmsnorm_fwd<<<unsigned(n), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw()), static_cast<const T*>(r.raw()),
        static_cast<const G*>(g.raw()), eps, static_cast<T*>(h.raw()), static_cast<T*>(y.raw()),
        rstd.data<float>(), d);
  });
  CUDA_CHECK_LAUNCH("add_rmsnorm_forward");
}

void add_rmsnorm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& g,
                          const Tensor& rstd, Tensor& dx, Tensor& dr, Tensor& dg) {
  const int64_t n = rows_of(h), d = h.size(-1);
  if (n == 0) return;
  dispatch_gain("add_rmsnorm_backward", h, g, [&](auto zx, auto zg) {
    using T = decltype(zx);
    using G = decltype(zg);
    const T *dyp = static_cast<const T*>(dy.raw()), *hp = static_cast<const T*>(h.raw());
    add_rmsnorm_bwd<<<unsigned(n), kThreads, 0, stream()>>>(
        dyp, static_cast<const T*>(dh.raw()), hp, static_cast<const G*>(g.raw()),
        rstd.data<float>(), static_cast<T*>(dx.raw()), static_cast<T*>(dr.raw()), d);
    rmsnorm_dg(dyp, hp, rstd, n, d, dg);
  });
  CUDA_CHECK_LAUNCH("add_rmsnorm_backward");
}

}  // namespace spectra::kernels::cuda
