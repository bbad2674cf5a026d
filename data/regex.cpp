#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace spectra {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {
// Oniguruma's Unicode \s: U+0009..U+000D, U+0085 and the separators (Zs, Zl, Zp).
constexpr const char* kSpaceItems = R"(\t-\r\x{85}\p{Z})";
// Oniguruma's Unicode \w: letters, marks, decimal digits, connector punctuation.
constexpr const char* kWordItems = R"(\p{L}\p{M}\p{Nd}\p{Pc})";

struct ThreadMatch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* ctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadMatch() {
    data = pcre2_match_data_create(16, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    // Long runs (a megabyte of spaces) backtrack deeply: give the JIT up to 64 MiB of stack.
    stack = pcre2_jit_stack_create(64 << 10, 64 << 20, nullptr);
    pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadMatch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(ctx);
    pcre2_match_data_free(data);
  }
};
ThreadMatch& thread_match() {
  thread_local ThreadMatch m;
  return m;
}
}  // namespace

std::string onig_compatible_pattern(const std::string& p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); i++) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kSpaceItems) : "[" + std::string(kSpaceItems) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceItems) + "]";
      } else if (n == 'w') {
        out += in_class ? std::string(kWordItems) : "[" + std::string(kWordItems) + "]";
      } else if (n == 'W' && !in_class) {
        out += "[^" + std::string(kWordItems) + "]";
      } else {
        out += c;  // other escapes (and \S, \W inside a class) keep PCRE2's meaning
        out += n;
      }
      i++;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '[' && in_class && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out += p.substr(i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  std::string compiled = literal ? pattern : onig_compatible_pattern(pattern);
  uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                             options, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    user_error("tokenizer regex '{}' does not compile (at offset {}): {}", pattern, err_off,
               reinterpret_cast<char*>(msg));
  }
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

Regex::Regex(Regex&& o) noexcept : pattern_(std::move(o.pattern_)), code_(o.code_), jit_(o.jit_) {
  o.code_ = nullptr;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::find_all(std::string_view s, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  ThreadMatch& m = thread_match();
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t len = s.size(), last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  // The onig crate's FindMatches: an empty match right where the previous match ended is
  // skipped by searching again one character later.
  while (last_end <= len) {
    int rc = jit_ ? pcre2_jit_match(code, subject, len, last_end, PCRE2_NO_UTF_CHECK, m.data, m.ctx)
                  : pcre2_match(code, subject, len, last_end, PCRE2_NO_UTF_CHECK, m.data, m.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(
          fmt::format("tokenizer regex '{}' failed: {}", pattern_, reinterpret_cast<char*>(msg)));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    size_t b = ov[0], e = ov[1];
    if (b == e && have_last && last_match_end == e) {
      if (last_end >= len) break;
      size_t step = 1;
      while (last_end + step < len &&
             (static_cast<unsigned char>(s[last_end + step]) & 0xC0) == 0x80)
        step++;
      last_end += step;
      continue;
    }
    last_end = e;
    last_match_end = e;
    have_last = true;
    out.emplace_back(uint32_t(b), uint32_t(e));
  }
}

}  // namespace spectra
