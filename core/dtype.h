// DType: the element types a Tensor can hold. The numeric values are stable: they are written
// into checkpoints and file headers, so never renumber, only append.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spectra {

enum class DType : uint8_t {
  f32 = 0,
  bf16 = 1,
  f16 = 2,
  i32 = 3,
  i64 = 4,
  u16 = 5,
  u32 = 6,
  u8 = 7,
  f64 = 8,  // CPU only: gradient checks and reference math
};

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
DType dtype_from_name(std::string_view name);  // throws a user error on an unknown name
inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::bf16 || t == DType::f16 || t == DType::f64;
}

// The C++ type of each storage dtype, for Tensor::data<T>() checks.
template <typename T>
constexpr DType dtype_of();
struct bf16_t;
struct f16_t;
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<bf16_t>() {
  return DType::bf16;
}
template <>
constexpr DType dtype_of<f16_t>() {
  return DType::f16;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::u16;
}
template <>
constexpr DType dtype_of<uint32_t>() {
  return DType::u32;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}

}  // namespace spectra
