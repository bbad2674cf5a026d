// A safetensors writer (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
// little-endian data. Small enough not to need a library; tests read the files with the
// `safetensors` Python package.
//
//   SafetensorsWriter w;
//   w.add("model.norm.weight", gain.to(DType::f16));   // CPU tensors, any order
//   w.write("out/model.safetensors", {{"format", "pt"}});
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace spectra {

// Reads a safetensors file's tensors as f32 (from F32, F16 or BF16). The header is checked whole
// when opened: a truncated or foreign file is a UserError naming the file and what is wrong.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  Shape shape(const std::string& name) const;
  Tensor read_f32(const std::string& name) const;

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    uint64_t begin = 0, end = 0;  // within the data section
  };
  std::string path_;
  uint64_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
};

class SafetensorsWriter {
 public:
  // f32, f16, bf16, i32, i64, u8 tensors on the CPU. Names must be unique.
  void add(const std::string& name, Tensor t);
  // Writes NAME.tmp and renames it: a crash never leaves a partial file under the real name.
  // UserError naming the file when it cannot be written.
  void write(const std::string& path, const std::map<std::string, std::string>& metadata) const;

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

}  // namespace spectra
