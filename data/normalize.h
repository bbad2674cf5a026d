// Text normalizers of tokenizer.json that spectra supports: none, and Unicode NFC (GPT-NeoX's
// tokenizer, the one the Spectra models use, declares {"type": "NFC"}). NFC comes from
// utf8proc; text made only of code points below U+0300 is already NFC and is passed through
// without a call (nearly all English text).
#pragma once
#include <string>
#include <string_view>

namespace spectra {

enum class Normalizer { None, NFC };

// `text` normalized, or `text` itself (as a view) when normalization leaves it unchanged;
// `storage` holds the normalized copy when there is one. Input must be valid UTF-8.
std::string_view normalize(Normalizer n, std::string_view text, std::string& storage);

}  // namespace spectra
