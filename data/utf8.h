// UTF-8 validation and repair. spectra's tokenizer, like Hugging Face `tokenizers` (which takes a
// Python str, so never sees invalid UTF-8), works on well-formed UTF-8 only; these helpers find
// the first bad byte (for an error naming the offset) or repair text the way Python's
// `bytes.decode("utf-8", errors="replace")` and Rust's `String::from_utf8_lossy` do.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace spectra::utf8 {

constexpr size_t npos = std::string_view::npos;

// Length of the well-formed sequence starting at s[i] (1..4), or 0 if it is ill-formed, in which
// case *bad (if given) receives the length of its maximal ill-formed subpart (at least 1).
size_t sequence_length(std::string_view s, size_t i, size_t* bad = nullptr);

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or npos when all of `s` is well-formed.
size_t find_invalid(std::string_view s);

// `s` with every maximal ill-formed subpart replaced by U+FFFD (Unicode's recommended practice,
// the one Python and Rust follow, so repaired text matches what they would produce).
std::string replace_invalid(std::string_view s);

// The code point at s[i] of well-formed UTF-8; advances i past it.
char32_t decode(std::string_view s, size_t& i);
// Code points in well-formed UTF-8 (Python's len() of the str).
size_t length(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` to `out`.
void append(std::string& out, char32_t cp);

}  // namespace spectra::utf8
