#include "data/normalize.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"

namespace spectra {

std::string_view normalize(Normalizer n, std::string_view text, std::string& storage) {
  if (n == Normalizer::None) return text;
  // Lead bytes below 0xCC encode code points below U+0300: no combining marks, no
  // decomposable characters, so NFC is the identity.
  bool simple = true;
  for (unsigned char c : text)
    if (c >= 0xCC) {
      simple = false;
      break;
    }
  if (simple) return text;
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                      utf8proc_ssize_t(text.size()), &out,
                                      utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (len < 0) throw Error(fmt::format("NFC normalization failed: {}", utf8proc_errmsg(len)));
  storage.assign(reinterpret_cast<char*>(out), size_t(len));
  std::free(out);
  return storage;
}

}  // namespace spectra
