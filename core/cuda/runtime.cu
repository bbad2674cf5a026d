// Device runtime: device selection, the stream, a stream-ordered caching allocator and CUDA
// graphs. The allocator keeps freed blocks in size-bucketed free lists (sizes rounded up to 512
// bytes below 1 MiB, to 2 MiB above) and hands them out again on the same stream, so
// steady-state training does no cudaMalloc/cudaFree at all. A graph's blocks live in a pool of
// their own (free list 1, 2, ...; the shared one is 0): a replay writes to the addresses it was
// captured with, so no other tensor may ever be given them.
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/cuda/check.cuh"
#include "core/cuda_runtime.h"

namespace spectra::cuda {

namespace {
using FreeList = std::multimap<size_t, void*>;  // size -> ptr
struct Block {
  size_t size;
  int pool;  // 0: shared; else the graph's whose capture allocated it
};
struct Allocator {
  std::mutex mu;
  FreeList free_blocks;                    // the shared pool's
  std::map<int, FreeList> graph_free;      // each graph pool's
  std::unordered_map<void*, Block> live;   // ptr -> block
  std::unordered_map<void*, Block> owned;  // every block of a graph pool, live or free
  int capturing = 0, next_pool = 1;        // the pool allocations go to while capturing
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
  FreeList& free_list = a.capturing ? a.graph_free[a.capturing] : a.free_blocks;
  auto it = free_list.lower_bound(size);
  if (it != free_list.end() && it->first <= size * 2) {  // reuse, wasting at most half
    size = it->first;
    p = it->second;
    free_list.erase(it);
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
    if (a.capturing) a.owned[p] = {size, a.capturing};
  }
  a.live[p] = {size, a.capturing};
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
  const Block b = it->second;
  a.in_use -= b.size;
  // Same stream: reuse is ordered after prior work (a graph's replays included).
  (b.pool ? a.graph_free[b.pool] : a.free_blocks).emplace(b.size, ptr);
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

namespace {
template <typename W>
__global__ void fill_kernel(W* p, W value, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    p[i] = value;
}
template <typename W>
void launch_fill(void* ptr, const void* pattern, size_t count) {
  W value;
  std::memcpy(&value, pattern, sizeof(W));
  const size_t blocks = std::min<size_t>((count + 255) / 256, 4096);
  fill_kernel<W><<<unsigned(blocks), 256, 0, static_cast<cudaStream_t>(stream())>>>(
      static_cast<W*>(ptr), value, count);
}
}  // namespace

void fill(void* ptr, const void* pattern, size_t pattern_bytes, size_t count) {
  if (count == 0) return;
  switch (pattern_bytes) {
    case 2:
      launch_fill<uint16_t>(ptr, pattern, count);
      break;
    case 4:
      launch_fill<uint32_t>(ptr, pattern, count);
      break;
    case 8:
      launch_fill<uint64_t>(ptr, pattern, count);
      break;
    default:
      throw Error(fmt::format("cuda::fill: {}-byte elements (2, 4 or 8 only)", pattern_bytes));
  }
  CUDA_CHECK(cudaGetLastError());
}

struct Graph::Impl {
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
};

Graph::Graph() : impl_(std::make_unique<Impl>()) {}

Graph::~Graph() {
  if (!impl_->pool) return;
  // Replays may still run: wait, then give the pool's blocks to the shared cache.
  cudaStreamSynchronize(static_cast<cudaStream_t>(stream()));
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  for (auto& [size, ptr] : a.graph_free[impl_->pool]) a.free_blocks.emplace(size, ptr);
  a.graph_free.erase(impl_->pool);
  for (auto it = a.owned.begin(); it != a.owned.end();) {
    if (it->second.pool != impl_->pool) {
      ++it;
      continue;
    }
    if (auto l = a.live.find(it->first); l != a.live.end()) l->second.pool = 0;  // freed later
    it = a.owned.erase(it);
  }
}

void Graph::capture(const std::function<void()>& queue_work) {
  SPECTRA_CHECK(!impl_->exec, "cuda::Graph::capture: already captured");
  auto s = static_cast<cudaStream_t>(stream());
  Allocator& a = allocator();
  {
    std::lock_guard<std::mutex> lock(a.mu);
    SPECTRA_CHECK(!a.capturing, "cuda::Graph::capture: another capture is in progress");
    impl_->pool = a.capturing = a.next_pool++;
  }
  // Relaxed: the captured code may call cudaMalloc (a pool's first blocks) and
  // cudaFuncSetAttribute; a synchronizing call fails the capture with an error.
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    queue_work();
  } catch (...) {
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    std::lock_guard<std::mutex> lock(a.mu);
    a.capturing = 0;
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(a.mu);
    a.capturing = 0;
  }
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  const cudaError_t err = cudaGraphInstantiate(&impl_->exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_CHECK(err);
}

void Graph::replay() {
  SPECTRA_CHECK(impl_->exec, "cuda::Graph::replay: nothing captured");
  CUDA_CHECK(cudaGraphLaunch(impl_->exec, static_cast<cudaStream_t>(stream())));
}

bool Graph::captured() const { return impl_->exec != nullptr; }

void synchronize() { CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream()))); }

}  // namespace spectra::cuda
