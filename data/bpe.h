// The byte-level BPE model: a word's bytes start as one symbol each and the pair with the
// lowest merge rank (leftmost first on ties) is merged until no listed pair remains, exactly as
// Hugging Face `tokenizers`' BPE::merge_all does. Results are cached per thread by word.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spectra {

struct BpeOptions {
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token (Llama 3)
  int32_t unk_id = -1;         // id for bytes missing from the vocabulary (-1: drop them, as HF)
  bool fuse_unk = false;       // consecutive unknown bytes give one unk token
};

class Bpe {
 public:
  // `vocab`: token (in the byte-level alphabet) -> id. `merges`: pairs of tokens, by rank.
  // `where` names the file in error messages.
  Bpe(const std::unordered_map<std::string, int32_t>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      const std::string& where);

  // Appends the ids of one pre-tokenized word, given as raw bytes.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;
  size_t num_merges() const { return merges_.size(); }

 private:
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;
  std::array<int32_t, 256> byte_id_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a,b) -> (rank, new id)
  std::unordered_map<std::string, int32_t> whole_words_;              // only with ignore_merges
  BpeOptions options_;
  uint64_t instance_;  // tells this model's per-thread cache entries from another model's
};

}  // namespace spectra
