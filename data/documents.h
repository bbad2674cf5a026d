// The documents of one input file for `spectra prepare`: raw records (JSONL lines, or a whole
// text file) read in chunks, and the document text each record holds, checked for UTF-8.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "data/prepare.h"

namespace spectra {

struct RawRecord {
  std::string data;
  int64_t line = 0;     // 1-based JSONL line; 0 for a whole text file
  uint64_t offset = 0;  // byte offset of data[0] in the (decompressed) file
};

struct RawChunk {
  int32_t file = 0;
  bool jsonl = false;
  std::vector<RawRecord> records;
  std::exception_ptr error;  // a read error, raised in order when the chunk is reached
};

// Whether `path` is read as JSON Lines under `format` (auto | text | jsonl).
bool is_jsonl(const std::string& path, const std::string& format);

// Reads `path` and calls emit() with chunks of about `chunk_bytes`; emit returns false to stop.
// `consumed` advances with the bytes of the file read so far.
void read_chunks(const std::string& path, int32_t file, bool jsonl, size_t chunk_bytes,
                 const std::function<bool(RawChunk&&)>& emit, std::atomic<uint64_t>& consumed);

// The document text of a record into `text`; false for a record that holds no document (a blank
// JSONL line). UserError naming file, line and byte offset for bad JSON, a missing field or
// invalid UTF-8 (unless `policy` is Replace, which counts replacements in *replaced).
bool record_text(const RawRecord& r, const std::string& path, bool jsonl, const std::string& field,
                 InvalidUtf8 policy, std::string& text, int64_t* replaced);

}  // namespace spectra
