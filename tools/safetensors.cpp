#include "tools/safetensors.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/error.h"
#include "core/half.h"

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

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) user_error("{}: no such file", path);
  const uint64_t size = std::filesystem::file_size(path);
  uint8_t len[8];
  if (size < 8 || !f.read(reinterpret_cast<char*>(len), 8))
    user_error("{}: not a safetensors file (shorter than its 8-byte header length)", path);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(len[i]) << (8 * i);
  if (n > size - 8)
    user_error("{}: not a safetensors file, or truncated (header of {} bytes in a file of {})",
               path, n, size);
  std::string text(n, '\0');
  f.read(text.data(), std::streamsize(n));
  data_start_ = 8 + n;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    user_error("{}: the safetensors header is not JSON ({})", path, e.what());
  }
  if (!header.is_object()) user_error("{}: the safetensors header is not a JSON object", path);
  for (auto& [name, j] : header.items()) {
    if (name == "__metadata__") continue;
    Entry e;
    // Sizes and offsets are non-negative integers (nlohmann would convert -1 or 1e300 silently).
    auto count_of = [](const nlohmann::json& v) {
      if (!v.is_number_unsigned()) throw std::invalid_argument("not a non-negative integer");
      return v.get<uint64_t>();
    };
    uint64_t count = 1, width = 0;
    bool overflow = false;
    try {
      e.dtype = j.at("dtype").get<std::string>();
      for (const nlohmann::json& d : j.at("shape")) {
        const uint64_t n = count_of(d);
        overflow |= n > uint64_t(INT64_MAX) || __builtin_mul_overflow(count, n, &count);
        e.shape.push_back(int64_t(n));
      }
      const nlohmann::json& off = j.at("data_offsets");
      if (!off.is_array() || off.size() != 2) throw std::invalid_argument("data_offsets: not 2");
      e.begin = count_of(off[0]);
      e.end = count_of(off[1]);
    } catch (const std::exception& ex) {  // nlohmann's errors and the checks above
      user_error("{}: tensor '{}' has a malformed entry ({})", path, name, ex.what());
    }
    width = e.dtype == "F32" ? 4 : e.dtype == "F16" || e.dtype == "BF16" ? 2 : 0;
    if (width == 0)
      user_error("{}: tensor '{}' is {}; spectra reads F32, F16 and BF16 weights", path, name,
                 e.dtype);
    if (overflow || __builtin_mul_overflow(count, width, &count) || e.end < e.begin ||
        e.end - e.begin != count)
      user_error("{}: tensor '{}' has {} bytes for shape {}", path, name, e.end - e.begin,
                 shape_str(e.shape));
    if (e.end > size - data_start_)
      user_error("{}: truncated: tensor '{}' ends at byte {} of a {}-byte file", path, name,
                 data_start_ + e.end, size);
    entries_[name] = e;
  }
}

std::vector<std::string> SafetensorsReader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : entries_) out.push_back(name);
  return out;
}

Shape SafetensorsReader::shape(const std::string& name) const { return entries_.at(name).shape; }

Tensor SafetensorsReader::read_f32(const std::string& name) const {
  const Entry& e = entries_.at(name);
  std::ifstream f(path_, std::ios::binary);
  std::vector<uint8_t> raw(e.end - e.begin);
  f.seekg(std::streamoff(data_start_ + e.begin));
  if (!f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size())))
    user_error("{}: could not read tensor '{}'", path_, name);
  Tensor t = Tensor::empty(e.shape, DType::f32);
  float* out = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i++) {
    if (e.dtype == "F32") {
      std::memcpy(out + i, raw.data() + 4 * i, 4);
    } else {
      const uint16_t h = uint16_t(raw[2 * i] | raw[2 * i + 1] << 8);
      out[i] = e.dtype == "F16" ? f16_to_float(f16_t{h}) : bf16_to_float(bf16_t{h});
    }
  }
  return t;
}

}  // namespace spectra
