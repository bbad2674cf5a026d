// Added tokens (special ones like <|endoftext|>, and others like GPT-NeoX's runs of spaces) are
// found in the raw text before pre-tokenization, as Hugging Face's AddedVocabulary does: a
// leftmost-longest scan (its Aho-Corasick MatchKind::LeftmostLongest), then the single_word,
// lstrip and rstrip rules of each token. Tokens with normalized=false match the raw text; those
// with normalized=true match the normalizer's output (a separate matcher, a second pass).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spectra {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
};

struct TextSegment {
  int32_t id;  // the added token's id, or -1 for text to pre-tokenize
  size_t begin, end;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  bool empty() const { return tokens_.empty(); }

  // Appends segments covering `text` in order (HF's find_matches). Empty text gives one empty
  // text segment.
  void split(std::string_view text, std::vector<TextSegment>& out) const;

 private:
  // The longest token starting at text[pos]: its index in tokens_, or -1.
  int longest_at(std::string_view text, size_t pos) const;
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;
  };
  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

}  // namespace spectra
