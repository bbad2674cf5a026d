// Device: where a tensor's storage lives, `cpu` or `cuda:N`.
#pragma once
#include <string>
#include <string_view>

namespace spectra {

struct Device {
  enum class Kind : uint8_t { cpu = 0, cuda = 1 };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {Kind::cuda, index}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device parse(std::string_view s);  // "cpu", "cuda", "cuda:N"; user error otherwise
};

}  // namespace spectra
