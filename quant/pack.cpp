#include "quant/pack.h"

#include "core/error.h"

namespace spectra::quant {

int64_t packing_multiple(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 8 ? 32 : 0;
}

namespace {

// 32 codes (bits 3) into three words, as AutoGPTQ's pack() lays them out.
void pack3(const uint32_t* v, uint32_t* w) {
  w[0] = w[1] = w[2] = 0;
  for (int k = 0; k < 10; k++) w[0] |= v[k] << (3 * k);
  w[0] |= v[10] << 30;  // low 2 bits of code 10
  w[1] |= (v[10] >> 2) & 1;
  for (int k = 0; k < 10; k++) w[1] |= v[11 + k] << (3 * k + 1);
  w[1] |= v[21] << 31;  // low bit of code 21
  w[2] |= (v[21] >> 1) & 3;
  for (int k = 0; k < 10; k++) w[2] |= v[22 + k] << (3 * k + 2);
}

}  // namespace

Tensor pack_codes(const Tensor& codes, int bits, bool along_rows, int32_t offset) {
  const int64_t multiple = packing_multiple(bits);
  SPECTRA_CHECK(multiple > 0, "pack_codes: no packed layout for {} bits", bits);
  const int64_t rows = codes.size(0), cols = codes.size(1);
  const int64_t n = along_rows ? rows : cols, other = along_rows ? cols : rows;
  SPECTRA_CHECK(n % multiple == 0, "pack_codes: {} is not a multiple of {}", n, multiple);
  const uint32_t mask = (1u << bits) - 1;
  const int64_t words = n * bits / 32;
  Tensor out = Tensor::zeros(along_rows ? Shape{words, other} : Shape{other, words}, DType::i32);
  const int32_t* c = codes.data<int32_t>();
  uint32_t* o = reinterpret_cast<uint32_t*>(out.data<int32_t>());
  auto code = [&](int64_t i, int64_t k) {  // the i-th code along the packed dimension of line k
    return uint32_t(c[along_rows ? i * cols + k : k * cols + i] - offset) & mask;
  };
  auto word = [&](int64_t w, int64_t k) -> uint32_t& {
    return o[along_rows ? w * other + k : k * words + w];
  };
  for (int64_t k = 0; k < other; k++)
    for (int64_t g = 0; g < n / 32; g++) {  // 32 codes at a time: bits words
      uint32_t v[32], w[8] = {};
      for (int64_t j = 0; j < 32; j++) v[j] = code(g * 32 + j, k);
      if (bits == 3) {
        pack3(v, w);
      } else {
        const int per = 32 / bits;
        for (int64_t j = 0; j < 32; j++) w[j / per] |= v[j] << (bits * (j % per));
      }
      for (int64_t j = 0; j < bits; j++) word(g * bits + j, k) = w[j];
    }
  return out;
}

}  // namespace spectra::quant
