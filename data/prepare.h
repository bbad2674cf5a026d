// `spectra prepare`: text or JSONL files -> tokenized HDF5 shards (data/token_file.h's format).
//
// Inputs, by extension after an optional .gz / .zst: ".jsonl"/".json" are JSON Lines, one
// document per line in the string field `text_field` (blank lines are skipped); anything else
// is plain text, one document per file. Documents are tokenized on `threads` worker threads in
// order-preserving chunks, and each is followed by the end-of-text token. Output shards are
// written under temporary names and renamed only when everything succeeded; on an error the
// temporary files are removed and a UserError names the file, line and byte offset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spectra {

enum class InvalidUtf8 { Error, Replace };

struct PrepareOptions {
  std::vector<std::string> inputs;  // files, or directories (their files, recursively, sorted)
  std::string tokenizer;            // tokenizer.json
  std::string out;                  // output .h5 (with shard_tokens: OUT-00000.h5, ...)
  std::string format = "auto";      // auto | text | jsonl
  std::string text_field = "text";
  std::string eot = "<|endoftext|>";
  int threads = 1;
  int64_t shard_tokens = 0;  // 0: a single file; else start a new shard past this many tokens
  InvalidUtf8 invalid_utf8 = InvalidUtf8::Error;
  bool progress = true;  // rate and ETA on stderr
  std::string created_by = "spectra";
};

struct PrepareResult {
  std::vector<std::string> files;
  int64_t documents = 0, tokens = 0, text_bytes = 0, empty_skipped = 0, replaced_utf8 = 0;
  double seconds = 0;
};

PrepareResult prepare(const PrepareOptions& options);

// The input files an argument list names (directories expanded), in order.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);

}  // namespace spectra
