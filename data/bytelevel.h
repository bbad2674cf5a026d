// GPT-2's byte-to-unicode table: byte-level BPE works on bytes, but its vocabulary and merges are
// written as printable characters, one per byte: printable Latin-1 bytes stand for themselves and
// the 68 others (controls, space, ...) map to U+0100.. in byte order (space -> 'Ġ', '\n' -> 'Ċ').
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace spectra::bytelevel {

// The UTF-8 encoding of the character standing for `byte`.
const std::string& char_of(uint8_t byte);
// The byte a character stands for, or -1 if `cp` is not one of the 256.
int byte_of(char32_t cp);
// `bytes` written in the byte-level alphabet (the form tokens take in tokenizer.json).
std::string encode(std::string_view bytes);
// The bytes of a byte-level string; false if some character is outside the alphabet (the
// string is then left partially decoded in `out`).
bool decode(std::string_view chars, std::string& out);

}  // namespace spectra::bytelevel
