// A GGUF (version 3) writer, for llama.cpp: key/value metadata, then tensor descriptions, then
// the tensors' data, each aligned to 32 bytes. Small enough not to need a library (no Debian
// package reads or writes GGUF); tests read the files with the PyPI `gguf` package and load them
// in llama.cpp itself (llama-cpp-python).
//
//   GgufWriter w;
//   w.add("general.architecture", std::string("llama"));
//   w.add_tensor("token_embd.weight", GgmlType::f16, {hidden, vocab}, bytes);
//   w.write("model.gguf");
//
// Also the ternary block formats llama.cpp stores TriLMs in, as ggml-quants.c's reference
// quantizers lay them out: 256 weights per block, each block scaled by its max |w| (f16).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace spectra {

// ggml's type numbers (ggml.h), stable in the file format.
enum class GgmlType : uint32_t { f32 = 0, f16 = 1, tq1_0 = 34, tq2_0 = 35 };

// Bytes of n weights of a type (n a multiple of the block size for the block types).
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// One 256-weight block of ternary values times a scale (each x = d·t, t in {-1, 0, 1}):
// TQ2_0: 64 bytes of 2-bit codes, then d (f16) -- 2.06 bits per weight.
// TQ1_0: 48 bytes of five base-3 digits each, 4 bytes of four, then d (f16) -- 1.69 bits.
void quantize_tq2_0(const float* x, uint8_t* block);
void quantize_tq1_0(const float* x, uint8_t* block);

class GgufWriter {
 public:
  using Value = std::variant<uint32_t, int32_t, float, bool, std::string, std::vector<std::string>,
                             std::vector<int32_t>>;
  void add(const std::string& key, Value value);
  // dims in ggml's order: dims[0] is the innermost (a [out, in] matrix is {in, out}).
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                  std::vector<uint8_t> data);
  // Writes PATH.tmp and renames it; UserError naming the file when it cannot be written.
  void write(const std::string& path) const;

 private:
  struct TensorEntry {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorEntry> tensors_;
};

}  // namespace spectra
