// Prepared token files ("spectra-tokens" version 1, written by `spectra prepare`): one HDF5 file
// per shard holding
//   /tokens       1-D u16 (vocabulary <= 65536) or u32, contiguous: every document's tokens,
//                 each document followed by the end-of-text token
//   /doc_offsets  1-D i64, documents + 1 entries: document d is tokens[off[d], off[d+1])
// and root attributes: format, format_version, tokenizer_sha256, tokenizer (its path when
// prepared), vocab_size, eot_id, num_documents, num_tokens, text_bytes, sources (a JSON array
// of the input files that contributed), text_field, created_by. docs/data.md describes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace spectra {

inline constexpr const char* kTokenFormat = "spectra-tokens";
inline constexpr int64_t kTokenFormatVersion = 1;

struct TokenFileMeta {
  std::string tokenizer_sha256, tokenizer;
  int64_t vocab_size = 0, eot_id = -1;
  int64_t num_documents = 0, num_tokens = 0, text_bytes = 0;
  std::string sources = "[]";  // JSON array of paths
  std::string text_field;
  std::string created_by = "spectra";  // the program and version that wrote it
};

// Writes one shard. `tokens` are ids below meta.vocab_size; stored as u16 when the vocabulary
// fits, else u32.
void write_token_file(const std::string& path, const std::vector<uint32_t>& tokens,
                      const std::vector<int64_t>& doc_offsets, const TokenFileMeta& meta);

// A shard opened for reading. Token reads use plain file I/O on the contiguous dataset, so any
// thread may call read() (HDF5 is only used at open).
class TokenFile {
 public:
  // Checks the format, version and consistency; UserError naming the file for a foreign,
  // truncated or mismatched one.
  explicit TokenFile(const std::string& path);
  TokenFile(TokenFile&&) noexcept;
  TokenFile(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  const TokenFileMeta& meta() const { return meta_; }
  int64_t num_tokens() const { return meta_.num_tokens; }
  DType dtype() const { return dtype_; }
  // tokens[start, start+count) as int32 into out.
  void read(int64_t start, int64_t count, int32_t* out) const;
  std::vector<int64_t> doc_offsets() const;

 private:
  std::string path_;
  TokenFileMeta meta_;
  DType dtype_ = DType::u16;
  int64_t data_offset_ = 0;
  int fd_ = -1;
};

}  // namespace spectra
