// Device runtime: device selection, the stream, and a stream-ordered caching allocator.
// The allocator keeps freed blocks in size-bucketed free lists (sizes rounded up to 512 bytes
// below 1 MiB, to 2 MiB above) and hands them out again on the same stream, so steady-state
// training does no cudaMalloc/cudaFree at all.
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/cuda/check.cuh"
#include "core/cuda_runtime.h"

namespace spectra::cuda {

namespace {
struct Allocator {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // size -> ptr
  std::unordered_map<void*, size_t> live;    // ptr -> size
  size_t in_use = 0, peak = 0, reserved = 0;
};
Allocator& allocator() {
  static Allocator* a = new Allocator();  // leaked: outlives static tensors at exit
  return *a;
}
size_t round_size(size_t n) {
  if (n < (1u << 20)) return (n + 511) / 512 * 512;
  return (n + (2u << 20) - 1) / (2u << 20) * (2u << 20);
}
cudaStream_t g_stream = nullptr;
}  // namespace

bool available() {
  int n = 0;  // cudaGetDeviceCount leaves n untouched on error (e.g. 35: no driver)
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return p.name;
}

void set_device(int device) { CUDA_CHECK(cudaSetDevice(device)); }
int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void* stream() {
  if (!g_stream) CUDA_CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  return g_stream;
}

void* alloc(size_t bytes, int device) {
  if (bytes == 0) bytes = 1;
  size_t size = round_size(bytes);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  void* p = nullptr;
  auto it = a.free_blocks.lower_bound(size);
  if (it != a.free_blocks.end() && it->first <= size * 2) {  // reuse, wasting at most half
    size = it->first;
    p = it->second;
    a.free_blocks.erase(it);
  } else {
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {  // release the cache once and retry
      cudaGetLastError();
      for (auto& [sz, ptr] : a.free_blocks) {
        cudaFree(ptr);
        a.reserved -= sz;
      }
      a.free_blocks.clear();
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error(fmt::format(
          "CUDA out of memory: allocating {:.1f} MiB on cuda:{} with {:.1f} MiB in use by tensors "
          "({}); reduce train.micro_batch or the model size",
          size / 1048576.0, device, a.in_use / 1048576.0, cudaGetErrorString(err)));
    }
    a.reserved += size;
  }
  a.live[p] = size;
  a.in_use += size;
  if (a.in_use > a.peak) a.peak = a.in_use;
  return p;
}

void free(void* ptr, int device) {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.live.find(ptr);
  SPECTRA_CHECK(it != a.live.end(), "cuda::free of a pointer the allocator does not own");
  a.in_use -= it->second;
  a.free_blocks.emplace(it->second, ptr);  // same stream: reuse is ordered after prior work
  a.live.erase(it);
}

void empty_cache() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& [sz, ptr] : a.free_blocks) {
    CUDA_CHECK(cudaFree(ptr));
    a.reserved -= sz;
  }
  a.free_blocks.clear();
}

size_t bytes_in_use() { return allocator().in_use; }
size_t peak_bytes_in_use() { return allocator().peak; }
void reset_peak() { allocator().peak = allocator().in_use; }

void memcpy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  auto s = static_cast<cudaStream_t>(stream());
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
  if (dst_dev.is_cpu() || src_dev.is_cpu()) CUDA_CHECK(cudaStreamSynchronize(s));
}

void memset_zero(void* ptr, size_t bytes) {
  CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, static_cast<cudaStream_t>(stream())));
}

void synchronize() { CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream()))); }

}  // namespace spectra::cuda
