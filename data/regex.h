// A compiled Unicode regular expression (PCRE2, UTF + UCP, JIT-compiled) that finds matches the
// way Hugging Face `tokenizers` does with Oniguruma, so pre-tokenization splits text identically:
//   - `\s`, `\S` and `\w` are rewritten to Oniguruma's Unicode classes before compiling (PCRE2's
//     own `\s` also matches U+180E, its `\w` misses combining marks);
//   - matches are enumerated like the Rust `onig` crate's find_iter, empty matches included.
// Thread-safe: matching uses per-thread match data and JIT stacks.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spectra {

class Regex {
 public:
  // `literal`: match `pattern` as plain text (HF's Split with a "String" pattern).
  explicit Regex(const std::string& pattern, bool literal = false);
  Regex(Regex&& o) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  // Appends the [begin, end) byte ranges of successive matches in `s`, which must be valid
  // UTF-8 (the tokenizer validates its input once).
  void find_all(std::string_view s, std::vector<std::pair<uint32_t, uint32_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

// The pattern with Oniguruma's meaning of \s, \S and \w spelled out for PCRE2.
std::string onig_compatible_pattern(const std::string& pattern);

// The GPT-2 pre-tokenizer pattern that HF's ByteLevel pre-tokenizer uses when use_regex is set.
extern const char* const kGpt2Pattern;

}  // namespace spectra
