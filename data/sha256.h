// SHA-256 (FIPS 180-4), for the tokenizer fingerprint stored in every prepared dataset: the hex
// digest of the tokenizer.json bytes, the same value `sha256sum tokenizer.json` prints.
// Written here because spectra links no crypto library; checked against known vectors in tests.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace spectra {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::array<uint8_t, 32> digest();  // finishes; the object is spent afterwards
  std::string hex();                 // digest() as 64 lowercase hex digits

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace spectra
