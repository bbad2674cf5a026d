// The CUDA half of core, callable from any C++ file. Built from core/cuda/*.cu when the CUDA
// backend is compiled, from core/nocuda/*.cpp otherwise (available() is then false and the
// rest throws). Nothing here touches the GPU before it is first called.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/device.h"

namespace spectra::cuda {

// True when the binary has the CUDA backend and a usable GPU is present. Never throws.
bool available();
int device_count();
// The GPU's marketing name, as nvidia-smi prints it ("NVIDIA H100 80GB HBM3").
std::string device_name(int device);
// Makes `device` current for this thread (spectra uses one GPU per process: the local rank's).
void set_device(int device);
int current_device();

// Stream-ordered caching allocator on the current stream. Blocks are reused, never returned to
// the driver until empty_cache(). Out-of-memory throws an Error naming the size and the usage.
void* alloc(size_t bytes, int device);
void free(void* ptr, int device);
void empty_cache();
size_t bytes_in_use();  // held by live tensors
size_t peak_bytes_in_use();
void reset_peak();

// Copies between any two of host/device (pageable host memory; synchronous w.r.t. the host).
void memcpy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
void memset_zero(void* ptr, size_t bytes);
// Writes `count` copies of the 2-, 4- or 8-byte value at `pattern` from `ptr` on: a kernel on the
// stream, so Tensor::fill_ can be part of a CUDA graph (a host copy cannot).
void fill(void* ptr, const void* pattern, size_t pattern_bytes, size_t count);
void synchronize();
// The stream every spectra kernel runs on (a cudaStream_t, opaque here).
void* stream();

// The work a function queues on the stream, captured once into a CUDA graph and replayed with
// one launch. What the captured work allocates comes from a pool this graph owns: the addresses
// stay valid for every replay, and nothing outside the graph is handed that memory, also after
// the tensors that held it are gone. The captured function may allocate but must not wait for
// the device (no copies to the host); capturing runs nothing, so replay once to run it.
class Graph {
 public:
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void capture(const std::function<void()>& queue_work);
  void replay();
  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectra::cuda
