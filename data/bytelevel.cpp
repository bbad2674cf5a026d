#include "data/bytelevel.h"

#include "data/utf8.h"

namespace spectra::bytelevel {

namespace {
struct Tables {
  std::array<std::string, 256> chars;
  std::array<int16_t, 324> bytes;  // every mapped code point is below U+0144
  Tables() {
    bytes.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; b++) {
      bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? char32_t(b) : char32_t(256 + next++);
      utf8::append(chars[size_t(b)], cp);
      bytes[cp] = int16_t(b);
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}
}  // namespace

const std::string& char_of(uint8_t byte) { return tables().chars[byte]; }

int byte_of(char32_t cp) { return cp < 324 ? tables().bytes[cp] : -1; }

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += char_of(b);
  return out;
}

bool decode(std::string_view s, std::string& out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = utf8::sequence_length(s, i);
    if (len == 0) return false;
    char32_t cp = static_cast<unsigned char>(s[i]);
    if (len > 1) {
      cp &= 0xFF >> (len + 1);
      for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    int b = byte_of(cp);
    if (b < 0) return false;
    out += char(b);
    i += len;
  }
  return true;
}

}  // namespace spectra::bytelevel
