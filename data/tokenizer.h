// A Hugging Face tokenizer.json byte-level BPE tokenizer (GPT-2 / GPT-NeoX family), encoding
// and decoding exactly as HF `tokenizers` does:
//
//   Tokenizer tok = Tokenizer::load("tokenizer.json");
//   std::vector<int32_t> ids = tok.encode("Hello world<|endoftext|>");
//   std::string text = tok.decode(ids);
//
// encode(text) equals HF's `Tokenizer.encode(text, add_special_tokens=False).ids` (the
// post-processor is not applied: `spectra prepare` adds the end-of-text token itself).
// decode(ids) equals HF's `decode(ids, skip_special_tokens=False)`. Text must be well-formed
// UTF-8 (HF takes a Python str, which always is); invalid input is a UserError naming the byte
// offset (utf8::replace_invalid repairs text the way Python's errors="replace" does).
// Immutable after loading and safe to use from many threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/added_tokens.h"

namespace spectra {

class Tokenizer {
 public:
  // Reads and parses a tokenizer.json; UserError naming the file and key on anything
  // unsupported or malformed.
  static Tokenizer load(const std::string& path);
  // Parses tokenizer.json text; `where` names it in errors.
  static Tokenizer parse(std::string_view json, const std::string& where);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int32_t>& out) const;  // appends

  // HF's decode: tokens mapped back to bytes, invalid UTF-8 replaced by U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The exact bytes, unrepaired: concatenating the bytes of successive ids gives the bytes
  // of the whole (what streaming generation needs). Unknown ids are a UserError.
  std::string decode_bytes(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // One more than the largest id (model vocabulary and added tokens): the embedding size a
  // model needs.
  int64_t vocab_size() const;
  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  std::string id_to_token(int32_t id) const;          // "" if absent
  const std::vector<AddedToken>& added_tokens() const;
  bool is_special(int32_t id) const;

  // SHA-256 (hex) of the tokenizer.json bytes: the fingerprint prepared datasets record.
  const std::string& sha256() const;
  const std::string& source() const;  // the path or name it was loaded from
  // The pre-tokenizer alone (what the trainer counts words with): the words of `text`, where
  // text between added tokens is split; added tokens themselves are skipped.
  void pre_tokenize(std::string_view text, std::vector<std::string>& words) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spectra
