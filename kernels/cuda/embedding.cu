// Embedding lookup (one block per token row) and a deterministic backward: the (id, position)
// pairs are sorted by id with a stable radix sort, then one warp per run of equal ids sums that
// run's gradient rows in order of position and adds the sum to the table row. No float atomics.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/embedding.h"

namespace spectra::kernels::cuda {

namespace {
template <typename T>
__global__ void embed_fwd(const int32_t* ids, const T* table, int64_t off, int64_t v, int64_t d,
                          T* out) {
  const int64_t n = blockIdx.x, row = int64_t(ids[n]) - off;
  const bool hit = row >= 0 && row < v;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
    out[n * d + k] = hit ? table[row * d + k] : from_f32<T>(0.f);
}

__global__ void iota(int32_t* p, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    p[i] = int32_t(i);
}

// One warp per sorted position that starts a run of equal ids.
template <typename T, typename G>
__global__ void embed_bwd_runs(const int32_t* ids_sorted, const int32_t* pos_sorted, const T* dout,
                               int64_t off, int64_t v, int64_t n, int64_t d, G* dtable) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (w >= n) return;
  const int32_t id = ids_sorted[w];
  if (w > 0 && ids_sorted[w - 1] == id) return;  // not the start of a run
  const int64_t row = int64_t(id) - off;
  if (row < 0 || row >= v) return;
  for (int64_t k = lane; k < d; k += 32) {
    float s = 0.f;
    for (int64_t j = w; j < n && ids_sorted[j] == id; j++)
      s += to_f32(dout[int64_t(pos_sorted[j]) * d + k]);
    dtable[row * d + k] = from_f32<G>(to_f32(dtable[row * d + k]) + s);
  }
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, int64_t off, Tensor& out) {
  if (ids.numel() == 0) return;
  dispatch_act("embedding_forward", table.dtype(), [&](auto z) {
    using T = decltype(z);
    embed_fwd<<<unsigned(ids.numel()), 256, 0, stream()>>>(
        ids.data<int32_t>(), static_cast<const T*>(table.raw()), off, table.size(0), table.size(1),
        static_cast<T*>(out.raw()));
  });
  CUDA_CHECK_LAUNCH("embedding_forward");
}

void embedding_backward(const Tensor& ids, const Tensor& dout, int64_t off, Tensor& dtable) {
  const int64_t n = ids.numel();
  if (n == 0) return;
  Tensor pos = scratch({n}, DType::i32), ids_sorted = scratch({n}, DType::i32),
         pos_sorted = scratch({n}, DType::i32);
  iota<<<blocks_for(n, 256), 256, 0, stream()>>>(pos.data<int32_t>(), n);
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ids.data<int32_t>(),
                                             ids_sorted.data<int32_t>(), pos.data<int32_t>(),
                                             pos_sorted.data<int32_t>(), int(n), 0, 32, stream()));
  Tensor temp = scratch({int64_t(temp_bytes) + 1}, DType::u8);
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw(), temp_bytes, ids.data<int32_t>(),
                                             ids_sorted.data<int32_t>(), pos.data<int32_t>(),
                                             pos_sorted.data<int32_t>(), int(n), 0, 32, stream()));
  dispatch_act("embedding_backward", dout.dtype(), [&](auto zd) {
    dispatch_act("embedding_backward", dtable.dtype(), [&](auto zt) {
      using T = decltype(zd);
      using G = decltype(zt);
      embed_bwd_runs<<<blocks_for(n * 32, 256), 256, 0, stream()>>>(
          ids_sorted.data<int32_t>(), pos_sorted.data<int32_t>(), static_cast<const T*>(dout.raw()),
          off, dtable.size(0), n, dtable.size(1), static_cast<G*>(dtable.raw()));
    });
  });
  CUDA_CHECK_LAUNCH("embedding_backward");
}

}  // namespace spectra::kernels::cuda
