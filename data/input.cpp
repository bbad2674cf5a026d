#include "data/input.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace spectra {

namespace {
FILE* open_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) user_error("{}: cannot open ({})", path, std::strerror(errno));
  return f;
}

class PlainInput : public InputStream {
 public:
  explicit PlainInput(const std::string& path) : InputStream(path), f_(open_file(path)) {}
  ~PlainInput() override { std::fclose(f_); }
  size_t read(char* buf, size_t n) override {
    size_t got = std::fread(buf, 1, n, f_);
    if (got == 0 && std::ferror(f_)) user_error("{}: read error ({})", path_, std::strerror(errno));
    pos_ += got;
    return got;
  }
  uint64_t consumed() const override { return pos_; }

 private:
  FILE* f_;
  uint64_t pos_ = 0;
};

class GzipInput : public InputStream {
 public:
  explicit GzipInput(const std::string& path) : InputStream(path) {
    std::fclose(open_file(path));  // a clear message for a missing file
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) user_error("{}: cannot open ({})", path, std::strerror(errno));
    gzbuffer(f_, 1 << 17);
  }
  ~GzipInput() override { gzclose(f_); }
  size_t read(char* buf, size_t n) override {
    int got = gzread(f_, buf, unsigned(std::min<size_t>(n, 1u << 30)));
    if (got < 0) {
      int code = 0;
      std::string msg = gzerror(f_, &code);
      user_error("{}: not valid gzip data ({})", path_, msg);
    }
    if (got == 0) {
      // gzread ends quietly at a truncated stream; gzerror tells.
      int code = 0;
      gzerror(f_, &code);
      if (code != Z_OK && code != Z_STREAM_END) user_error("{}: truncated gzip stream", path_);
      if (!gzeof(f_)) user_error("{}: truncated gzip stream", path_);
    }
    return size_t(got);
  }
  uint64_t consumed() const override { return uint64_t(gzoffset(f_)); }

 private:
  gzFile f_;
};

class ZstdInput : public InputStream {
 public:
  explicit ZstdInput(const std::string& path)
      : InputStream(path),
        f_(open_file(path)),
        ds_(ZSTD_createDStream()),
        in_buf_(ZSTD_DStreamInSize()) {
    ZSTD_initDStream(ds_);
  }
  ~ZstdInput() override {
    ZSTD_freeDStream(ds_);
    std::fclose(f_);
  }
  size_t read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (in_.pos == in_.size) {
        size_t got = std::fread(in_buf_.data(), 1, in_buf_.size(), f_);
        if (got == 0) {
          if (std::ferror(f_)) user_error("{}: read error ({})", path_, std::strerror(errno));
          // The last frame must have ended: a nonzero hint means it was cut short.
          if (last_ != 0) user_error("{}: truncated zstd stream", path_);
          return 0;
        }
        consumed_ += got;
        in_ = {in_buf_.data(), got, 0};
      }
      last_ = ZSTD_decompressStream(ds_, &out, &in_);
      if (ZSTD_isError(last_))
        user_error("{}: not valid zstd data ({})", path_, ZSTD_getErrorName(last_));
    }
    return out.pos;
  }
  uint64_t consumed() const override { return consumed_; }

 private:
  FILE* f_;
  ZSTD_DStream* ds_;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  size_t last_ = 0;
  uint64_t consumed_ = 0;
};
}  // namespace

std::unique_ptr<InputStream> InputStream::open(const std::string& path) {
  if (path.ends_with(".gz")) return std::make_unique<GzipInput>(path);
  if (path.ends_with(".zst") || path.ends_with(".zstd")) return std::make_unique<ZstdInput>(path);
  return std::make_unique<PlainInput>(path);
}

bool LineReader::next(std::string& line, uint64_t& offset) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line.assign(buf_, pos_, nl - pos_);
      offset = buf_offset_ + pos_;
      pos_ = nl + 1;
      return true;
    }
    if (eof_) {
      if (pos_ >= buf_.size()) return false;
      line.assign(buf_, pos_, std::string::npos);
      offset = buf_offset_ + pos_;
      pos_ = buf_.size();
      return true;
    }
    // Keep the unfinished line, read more behind it.
    buf_offset_ += pos_;
    buf_.erase(0, pos_);
    pos_ = 0;
    size_t old = buf_.size(), want = std::max<size_t>(1 << 20, old);
    buf_.resize(old + want);
    size_t got = in_.read(buf_.data() + old, want);
    buf_.resize(old + got);
    if (got == 0) eof_ = true;
  }
}

std::string read_all(InputStream& in) {
  std::string out;
  size_t got;
  do {
    size_t old = out.size();
    out.resize(old + (1 << 20));
    got = in.read(out.data() + old, 1 << 20);
    out.resize(old + got);
  } while (got > 0);
  return out;
}

}  // namespace spectra
