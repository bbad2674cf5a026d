#include "core/tensor.h"

#include <fmt/ranges.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/cuda_runtime.h"
#include "core/half.h"

namespace spectra {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
std::atomic<size_t> g_host_bytes{0}, g_host_peak{0};
}

size_t host_bytes_in_use() { return g_host_bytes.load(); }
size_t host_peak_bytes_in_use() { return g_host_peak.load(); }
void reset_host_peak() { g_host_peak.store(g_host_bytes.load()); }

Storage::Storage(size_t n, Device dev) : bytes(n), device(dev) {
  if (dev.is_cpu()) {
    data = std::aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!data) throw Error(fmt::format("out of host memory allocating {} bytes", n));
    const size_t now = g_host_bytes.fetch_add(n) + n;
    size_t peak = g_host_peak.load();
    while (now > peak && !g_host_peak.compare_exchange_weak(peak, now)) {
    }
  } else {
    data = cuda::alloc(n, dev.index);
  }
}

Storage::~Storage() {
  if (device.is_cpu()) {
    std::free(data);
    g_host_bytes.fetch_sub(bytes);
  } else
    cuda::free(data, device.index);
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  Tensor t;
  for (int64_t d : shape) SPECTRA_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(Shape shape, double value, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, Device::cpu());
  t.fill_(value);
  return device.is_cpu() ? t : t.to(device);
}

int64_t Tensor::size(int64_t i) const {
  int64_t n = dim();
  if (i < 0) i += n;
  SPECTRA_CHECK(i >= 0 && i < n, "dimension {} out of range for shape {}", i, shape_str(shape_));
  return shape_[i];
}

Tensor Tensor::view(Shape shape) const {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == -1) {
      SPECTRA_CHECK(infer < 0, "view: more than one -1 in {}", shape_str(shape));
      infer = int64_t(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) shape[infer] = known ? numel_ / known : 0;
  SPECTRA_CHECK(shape_numel(shape) == numel_, "view: cannot view {} as {}", shape_str(shape_),
                shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  SPECTRA_CHECK(dim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0],
                "slice [{}, {}) out of range for shape {}", begin, end, shape_str(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += size_t(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = t.shape_[0] * row;
  return t;
}

Tensor Tensor::reinterpret(DType dtype) const {
  const size_t size = dtype_size(dtype);
  SPECTRA_CHECK(offset_ % size == 0 && nbytes() % size == 0, "reinterpret: {} at byte {} as {}",
                str(), offset_, dtype_name(dtype));
  Tensor t = *this;
  t.dtype_ = dtype;
  t.numel_ = int64_t(nbytes() / size);
  t.shape_ = {t.numel_};
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const { return to(device()); }

void Tensor::copy_from(const Tensor& src) {
  SPECTRA_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: {} into {}", src.str(),
                str());
  if (nbytes() == 0) return;
  if (device().is_cpu() && src.device().is_cpu())
    std::memcpy(raw(), src.raw(), nbytes());
  else
    cuda::memcpy(raw(), device(), src.raw(), src.device(), nbytes());
}

void Tensor::zero_() {
  if (nbytes() == 0) return;
  if (device().is_cpu())
    std::memset(raw(), 0, nbytes());
  else
    cuda::memset_zero(raw(), nbytes());
}

void Tensor::fill_(double value) {
  size_t es = dtype_size(dtype_);
  if (device().is_cuda() && (es == 2 || es == 4 || es == 8)) {
    alignas(8) char pattern[8];
    store_from_double(pattern, dtype_, value);
    cuda::fill(raw(), pattern, es, size_t(numel_));  // a kernel: capturable in a CUDA graph
    return;
  }
  if (device().is_cuda()) {
    copy_from(full(shape_, value, dtype_));
    return;
  }
  char* p = static_cast<char*>(raw());
  for (int64_t i = 0; i < numel_; i++) store_from_double(p + i * es, dtype_, value);
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  if (device().is_cuda()) return to(Device::cpu()).to(dtype).to(device());
  Tensor t = empty(shape_, dtype, Device::cpu());
  const char* s = static_cast<const char*>(raw());
  char* d = static_cast<char*>(t.raw());
  size_t ss = dtype_size(dtype_), ds = dtype_size(dtype);
  for (int64_t i = 0; i < numel_; i++)
    store_from_double(d + i * ds, dtype, load_as_double(s + i * ss, dtype_));
  return t;
}

std::vector<double> Tensor::to_doubles() const {
  Tensor h = device().is_cpu() ? *this : to(Device::cpu());
  std::vector<double> out(static_cast<size_t>(numel_));
  const char* p = static_cast<const char*>(h.raw());
  size_t es = dtype_size(dtype_);
  for (int64_t i = 0; i < numel_; i++) out[i] = load_as_double(p + i * es, dtype_);
  return out;
}

double Tensor::item() const {
  SPECTRA_CHECK(numel_ == 1, "item() of a tensor with {} elements", numel_);
  return to_doubles()[0];
}

std::string Tensor::str() const {
  return fmt::format("{}{} on {}", dtype_name(dtype_), shape_str(shape_), device().str());
}

double load_as_double(const void* p, DType t) {
  switch (t) {
    case DType::f32:
      return *static_cast<const float*>(p);
    case DType::f64:
      return *static_cast<const double*>(p);
    case DType::bf16:
      return bf16_to_float(*static_cast<const bf16_t*>(p));
    case DType::f16:
      return f16_to_float(*static_cast<const f16_t*>(p));
    case DType::i32:
      return *static_cast<const int32_t*>(p);
    case DType::i64:
      return double(*static_cast<const int64_t*>(p));
    case DType::u16:
      return *static_cast<const uint16_t*>(p);
    case DType::u32:
      return *static_cast<const uint32_t*>(p);
    case DType::u8:
      return *static_cast<const uint8_t*>(p);
  }
  return 0;
}

void store_from_double(void* p, DType t, double v) {
  switch (t) {
    case DType::f32:
      *static_cast<float*>(p) = float(v);
      break;
    case DType::f64:
      *static_cast<double*>(p) = v;
      break;
    case DType::bf16:
      *static_cast<bf16_t*>(p) = float_to_bf16(float(v));
      break;
    case DType::f16:
      *static_cast<f16_t*>(p) = float_to_f16(float(v));
      break;
    case DType::i32:
      *static_cast<int32_t*>(p) = int32_t(v);
      break;
    case DType::i64:
      *static_cast<int64_t*>(p) = int64_t(v);
      break;
    case DType::u16:
      *static_cast<uint16_t*>(p) = uint16_t(v);
      break;
    case DType::u32:
      *static_cast<uint32_t*>(p) = uint32_t(v);
      break;
    case DType::u8:
      *static_cast<uint8_t*>(p) = uint8_t(v);
      break;
  }
}

}  // namespace spectra
