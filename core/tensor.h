// Tensor: contiguous storage plus shape, dtype and device. A Tensor is a handle: copies share
// storage (like a shared_ptr). Views (reshape, slices along the leading dimension) are an offset
// into the same storage; there are no general strides, so a transpose is a kernel.
//
//   Tensor x = Tensor::empty({4, 8});                  // f32 on the CPU, uninitialized
//   Tensor y = Tensor::zeros({4, 8}, DType::bf16, Device::cuda());
//   float* p = x.data<float>();                        // checks the dtype
//   Tensor row = x.slice(1, 3).view({2, 2, 4});        // rows 1..2, reshaped: same storage
//   Tensor h = y.to(Device::cpu()).to(DType::f32);     // copy to host, then cast
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace spectra {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// Owns one allocation (64-byte aligned on the CPU; the caching allocator on CUDA).
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// Bytes of host tensor storage alive now, and the most alive at once since reset_host_peak():
// the CPU's counterpart of cuda::bytes_in_use() / peak_bytes_in_use().
size_t host_bytes_in_use();
size_t host_peak_bytes_in_use();
void reset_host_peak();

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(Shape shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(Shape shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  // Copies host values into a new CPU tensor of dtype_of<T>().
  template <typename T>
  static Tensor from(const std::vector<T>& values, Shape shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  bool is_cuda() const { return device().is_cuda(); }

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <typename T>
  T* data() const {
    SPECTRA_CHECK(dtype_ == dtype_of<T>(), "tensor holds {}, accessed as {}", dtype_name(dtype_),
                  dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw());
  }

  // Same storage, new shape with the same element count (one -1 is inferred).
  Tensor view(Shape shape) const;
  // Rows [begin, end) of the leading dimension, same storage.
  Tensor slice(int64_t begin, int64_t end) const;
  // The same bytes read as another dtype, 1-D [nbytes / its size] (the typed parts of a byte
  // buffer); the byte offset and length must be multiples of that size.
  Tensor reinterpret(DType dtype) const;

  // New storage.
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  // cast (CPU: any float<->float; CUDA: f32/bf16/f16)
  Tensor clone() const;
  // Copies src (same shape and dtype, any device) into this tensor's storage.
  void copy_from(const Tensor& src);
  void zero_();
  void fill_(double value);
  // A host std::vector<double> of the values, whatever the dtype/device (tests, printing).
  std::vector<double> to_doubles() const;
  // Host value of a one-element tensor.
  double item() const;

  std::string str() const;  // "f32[4, 8] on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

// Converts one element of any dtype at `p` to double / stores a double into it (host memory).
double load_as_double(const void* p, DType t);
void store_from_double(void* p, DType t, double v);

template <typename T>
Tensor Tensor::from(const std::vector<T>& values, Shape shape) {
  Tensor t = empty(std::move(shape), dtype_of<T>());
  SPECTRA_CHECK(size_t(t.numel()) == values.size(), "Tensor::from: {} values for shape {}",
                values.size(), shape_str(t.shape()));
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace spectra
