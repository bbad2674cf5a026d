#include "tools/gguf.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/half.h"

namespace spectra {

namespace {

constexpr uint64_t kAlignment = 32;  // general.alignment's default
constexpr int64_t kBlock = 256;      // QK_K

enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };

class Bytes {
 public:
  template <class T>
  void put(T x) {  // little-endian, as every supported host is
    const auto* p = reinterpret_cast<const uint8_t*>(&x);
    b_.insert(b_.end(), p, p + sizeof(T));
  }
  void put(const std::string& s) {
    put(uint64_t(s.size()));
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void pad() { b_.resize((b_.size() + kAlignment - 1) / kAlignment * kAlignment, 0); }
  const std::vector<uint8_t>& data() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// The trit of x scaled by 1/d, as the reference does: lroundf(x·id) + 1 in {0, 1, 2}.
uint8_t trit(float x, float id) { return uint8_t(std::lround(x * id) + 1); }

float block_scale(const float* x, float& id) {
  float amax = 0;
  for (int64_t i = 0; i < kBlock; i++) amax = std::max(amax, std::fabs(x[i]));
  id = amax != 0 ? 1.f / amax : 0.f;
  return amax;
}

void put_half(uint8_t* p, float d) {
  const uint16_t h = float_to_f16(d).bits;
  p[0] = uint8_t(h), p[1] = uint8_t(h >> 8);
}

// Digits (most significant first) of a base-3 number of n trits, mapped onto a byte so that
// the top trit is recoverable by multiplying by 3 (ceil(q·256/243)).
uint8_t pack_trits(const uint8_t* t, int n, int pad) {
  uint32_t q = 0;
  for (int i = 0; i < n; i++) q = q * 3 + t[i];
  for (int i = 0; i < pad; i++) q *= 3;
  return uint8_t((q * 256 + 242) / 243);
}

}  // namespace

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  switch (type) {
    case GgmlType::f32:
      return 4 * n;
    case GgmlType::f16:
      return 2 * n;
    case GgmlType::tq2_0:
      return n / kBlock * 66;
    case GgmlType::tq1_0:
      return n / kBlock * 54;
  }
  return 0;
}

void quantize_tq2_0(const float* x, uint8_t* block) {
  float id;
  const float d = block_scale(x, id);
  // Byte j of each 32-byte group holds elements j, j+32, j+64, j+96 of its 128, low bits first.
  for (int64_t g = 0; g < 2; g++)
    for (int64_t j = 0; j < 32; j++) {
      uint8_t q = 0;
      for (int64_t n = 0; n < 4; n++) q |= uint8_t(trit(x[g * 128 + n * 32 + j], id) << (2 * n));
      block[g * 32 + j] = q;
    }
  put_half(block + 64, d);
}

void quantize_tq1_0(const float* x, uint8_t* block) {
  float id;
  const float d = block_scale(x, id);
  uint8_t t[5];
  // qs[0..32): elements j + 32·n (n < 5) of the first 160; qs[32..48): j + 16·n of the next 80.
  for (int64_t j = 0; j < 32; j++) {
    for (int n = 0; n < 5; n++) t[n] = trit(x[j + 32 * n], id);
    block[j] = pack_trits(t, 5, 0);
  }
  for (int64_t j = 0; j < 16; j++) {
    for (int n = 0; n < 5; n++) t[n] = trit(x[160 + j + 16 * n], id);
    block[32 + j] = pack_trits(t, 5, 0);
  }
  // qh[0..4): elements 240 + j + 4·m (m < 4), four trits shifted up by one digit.
  for (int64_t j = 0; j < 4; j++) {
    for (int m = 0; m < 4; m++) t[m] = trit(x[240 + j + 4 * m], id);
    block[48 + j] = pack_trits(t, 4, 1);
  }
  put_half(block + 52, d);
}

void GgufWriter::add(const std::string& key, Value value) {
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                            std::vector<uint8_t> data) {
  int64_t rows = 1;
  for (size_t i = 1; i < dims.size(); i++) rows *= dims[i];
  SPECTRA_CHECK(int64_t(data.size()) == rows * ggml_row_bytes(type, dims[0]),
                "gguf: '{}' has {} bytes for its shape", name, data.size());
  tensors_.push_back({name, type, std::move(dims), std::move(data)});
}

void GgufWriter::write(const std::string& path) const {
  Bytes h;
  h.put(uint32_t(0x46554747));  // "GGUF"
  h.put(uint32_t(3));
  h.put(uint64_t(tensors_.size()));
  h.put(uint64_t(kv_.size()));
  for (const auto& [key, value] : kv_) {
    h.put(key);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, uint32_t>) h.put(kU32), h.put(v);
          if constexpr (std::is_same_v<T, int32_t>) h.put(kI32), h.put(v);
          if constexpr (std::is_same_v<T, float>) h.put(kF32), h.put(v);
          if constexpr (std::is_same_v<T, bool>) h.put(kBool), h.put(uint8_t(v));
          if constexpr (std::is_same_v<T, std::string>) h.put(kString), h.put(v);
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            h.put(kArray), h.put(kString), h.put(uint64_t(v.size()));
            for (const std::string& s : v) h.put(s);
          }
          if constexpr (std::is_same_v<T, std::vector<int32_t>>) {
            h.put(kArray), h.put(kI32), h.put(uint64_t(v.size()));
            for (int32_t x : v) h.put(x);
          }
        },
        value);
  }
  uint64_t offset = 0;
  for (const TensorEntry& t : tensors_) {
    h.put(t.name);
    h.put(uint32_t(t.dims.size()));
    for (int64_t d : t.dims) h.put(uint64_t(d));
    h.put(uint32_t(t.type));
    h.put(offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  h.pad();

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) user_error("{}: cannot create (check the directory exists and is writable)", tmp);
  bool ok = std::fwrite(h.data().data(), 1, h.data().size(), f) == h.data().size();
  static const uint8_t zeros[kAlignment] = {};
  for (const TensorEntry& t : tensors_) {
    ok = ok && std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
    const size_t pad = (kAlignment - t.data.size() % kAlignment) % kAlignment;
    ok = ok && std::fwrite(zeros, 1, pad, f) == pad;
  }
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    user_error("{}: writing failed (disk full?)", path);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace spectra
