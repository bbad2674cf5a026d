#include "core/dtype.h"

#include "core/device.h"
#include "core/error.h"

namespace spectra {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
    case DType::i32:
    case DType::u32:
      return 4;
    case DType::bf16:
    case DType::f16:
    case DType::u16:
      return 2;
    case DType::i64:
    case DType::f64:
      return 8;
    case DType::u8:
      return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::u16:
      return "u16";
    case DType::u32:
      return "u32";
    case DType::u8:
      return "u8";
    case DType::f64:
      return "f64";
  }
  return "?";
}

DType dtype_from_name(std::string_view name) {
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u16,
                  DType::u32, DType::u8, DType::f64})
    if (dtype_name(t) == name) return t;
  if (name == "fp16") return DType::f16;
  user_error("unknown dtype '{}' (expected f32, bf16, fp16, f64, i32, ...)", name);
}

Device Device::parse(std::string_view s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.starts_with("cuda:")) {
    std::string idx(s.substr(5));
    if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos)
      return cuda(std::stoi(idx));
  }
  user_error("unknown device '{}' (expected cpu, cuda or cuda:N)", s);
}

}  // namespace spectra
