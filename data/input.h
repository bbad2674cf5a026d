// Streaming reads of input files, decompressing by extension: ".gz" (zlib) and ".zst" (zstd);
// anything else is read as it is. Corrupt or truncated compressed data is a UserError naming the
// file. `consumed()` counts bytes of the file itself, for progress against file sizes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace spectra {

class InputStream {
 public:
  static std::unique_ptr<InputStream> open(const std::string& path);
  virtual ~InputStream() = default;
  // Up to n decompressed bytes into buf; 0 only at the end of the data.
  virtual size_t read(char* buf, size_t n) = 0;
  virtual uint64_t consumed() const = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit InputStream(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Splits a stream into lines ('\n' removed; a final line without '\n' counts too).
class LineReader {
 public:
  explicit LineReader(InputStream& in) : in_(in) {}
  // False at the end. `offset`: the line's first byte in the decompressed stream.
  bool next(std::string& line, uint64_t& offset);

 private:
  InputStream& in_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t buf_offset_ = 0;  // stream offset of buf_[0]
  bool eof_ = false;
};

std::string read_all(InputStream& in);

}  // namespace spectra
