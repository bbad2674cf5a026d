#include "data/added_tokens.h"

#include <algorithm>
#include <memory>

#include "data/regex.h"
#include "data/utf8.h"

namespace spectra {

namespace {
// Rust's Unicode White_Space (HF's `\s` in `^\s*` and `\s*$`).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

char32_t decode_at(std::string_view s, size_t i, size_t* len) {
  *len = utf8::sequence_length(s, i);
  if (*len == 0) *len = 1;
  char32_t cp = static_cast<unsigned char>(s[i]);
  if (*len > 1) {
    cp &= 0xFF >> (*len + 1);
    for (size_t k = 1; k < *len; k++)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  return cp;
}

size_t prev_char_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) i--;
  return i;
}

// Rust regex's Unicode \w (Alphabetic, marks, decimal digits, connector punctuation, joiners):
// HF's `^\w` / `\w$` checks for single_word tokens.
bool is_word_char(std::string_view ch) {
  static const Regex word(R"(^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]$)", false);
  std::vector<std::pair<uint32_t, uint32_t>> m;
  word.find_all(ch, m);
  return !m.empty();
}
}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  trie_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); t++) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;
    first_byte_[static_cast<unsigned char>(s[0])] = true;
    int32_t node = 0;
    for (unsigned char b : s) {
      auto& next = trie_[size_t(node)].next;
      auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t(-1)));
      if (it != next.end() && it->first == b) {
        node = it->second;
      } else {
        int32_t child = int32_t(trie_.size());
        next.insert(it, {b, child});
        trie_.emplace_back();
        node = child;
      }
    }
    if (trie_[size_t(node)].token < 0) trie_[size_t(node)].token = int32_t(t);  // first wins
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  int best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); i++) {
    const auto& next = trie_[size_t(node)].next;
    auto b = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t(-1)));
    if (it == next.end() || it->first != b) break;
    node = it->second;
    if (trie_[size_t(node)].token >= 0) best = trie_[size_t(node)].token;
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& out) const {
  if (text.empty()) {
    out.push_back({-1, 0, 0});
    return;
  }
  size_t start_offset = 0, pos = 0, n = text.size();
  while (pos < n) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      pos++;
      continue;
    }
    int t = longest_at(text, pos);
    if (t < 0) {
      pos++;
      continue;
    }
    const AddedToken& tok = tokens_[size_t(t)];
    size_t start = pos, stop = pos + tok.content.size();
    pos = stop;  // the scan resumes after the match even when the rules below discard it
    if (tok.single_word) {
      bool start_space = true, stop_space = true;
      if (start > 0) {
        size_t p = prev_char_start(text, start);
        start_space = !is_word_char(text.substr(p, start - p));
      }
      if (stop < n) {
        size_t len;
        decode_at(text, stop, &len);
        stop_space = !is_word_char(text.substr(stop, len));
      }
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t p = prev_char_start(text, s), len;
        if (!is_space(decode_at(text, p, &len))) break;
        s = p;
      }
      start = std::max(s, start_offset);  // spaces an earlier match took stay with it
    }
    if (tok.rstrip) {
      size_t len;
      while (stop < n && is_space(decode_at(text, stop, &len))) stop += len;
    }
    if (start_offset < start) out.push_back({-1, start_offset, start});
    out.push_back({tok.id, start, stop});
    start_offset = stop;
  }
  if (start_offset != n) out.push_back({-1, start_offset, n});
}

}  // namespace spectra
