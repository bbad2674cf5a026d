// Built when spectra has no CUDA backend: every entry point says so.
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace spectra::cuda {

[[noreturn]] static void no_cuda() {
  user_error("this spectra was built without CUDA (rebuild with nvcc present or SPECTRA_CUDA=ON)");
}
bool available() { return false; }
int device_count() { return 0; }
std::string device_name(int) { no_cuda(); }
void set_device(int) { no_cuda(); }
int current_device() { no_cuda(); }
void* alloc(size_t, int) { no_cuda(); }
void free(void*, int) { no_cuda(); }
void empty_cache() {}
size_t bytes_in_use() { return 0; }
size_t peak_bytes_in_use() { return 0; }
void reset_peak() {}
void memcpy(void*, Device, const void*, Device, size_t) { no_cuda(); }
void memset_zero(void*, size_t) { no_cuda(); }
void fill(void*, const void*, size_t, size_t) { no_cuda(); }
void synchronize() {}
void* stream() { return nullptr; }

struct Graph::Impl {};
Graph::Graph() = default;
Graph::~Graph() = default;
void Graph::capture(const std::function<void()>&) { no_cuda(); }
void Graph::replay() { no_cuda(); }
bool Graph::captured() const { return false; }

}  // namespace spectra::cuda
