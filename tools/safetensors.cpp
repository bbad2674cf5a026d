#include "tools/safetensors.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace spectra {

namespace {
const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f16:
      return "F16";
    case DType::bf16:
      return "BF16";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::u8:
      return "U8";
    default:
      throw Error(fmt::format("safetensors: no dtype for {}", dtype_name(t)));
  }
}
}  // namespace

void SafetensorsWriter::add(const std::string& name, Tensor t) {
  SPECTRA_CHECK(t.device().is_cpu(), "safetensors: '{}' is not on the CPU", name);
  for (const auto& [n, _] : tensors_) SPECTRA_CHECK(n != name, "safetensors: '{}' twice", name);
  safetensors_dtype(t.dtype());
  tensors_.emplace_back(name, std::move(t));
}

void SafetensorsWriter::write(const std::string& path,
                              const std::map<std::string, std::string>& metadata) const {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    header[name] = {{"dtype", safetensors_dtype(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t n = text.size();
  unsigned char size[8];
  for (int i = 0; i < 8; i++) size[i] = static_cast<unsigned char>(n >> (8 * i));  // little-endian

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) user_error("{}: cannot create (check the directory exists and is writable)", tmp);
  bool ok = std::fwrite(size, 1, 8, f) == 8 && std::fwrite(text.data(), 1, n, f) == n;
  for (const auto& [name, t] : tensors_)  // spectra tensors are little-endian in memory
    ok = ok && std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    user_error("{}: writing failed (disk full?)", path);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace spectra
