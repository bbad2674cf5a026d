#include "data/token_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "data/hdf5.h"

namespace spectra {

void write_token_file(const std::string& path, const std::vector<uint32_t>& tokens,
                      const std::vector<int64_t>& doc_offsets, const TokenFileMeta& meta) {
  bool narrow = meta.vocab_size <= 65536;
  Tensor t = Tensor::empty({int64_t(tokens.size())}, narrow ? DType::u16 : DType::u32);
  if (narrow) {
    uint16_t* p = t.data<uint16_t>();
    for (size_t i = 0; i < tokens.size(); i++) p[i] = uint16_t(tokens[i]);
  } else {
    std::copy(tokens.begin(), tokens.end(), t.data<uint32_t>());
  }
  h5::File f = h5::File::create(path);
  f.write("tokens", t);
  f.write("doc_offsets", Tensor::from(doc_offsets, {int64_t(doc_offsets.size())}));
  f.set_attr("format", kTokenFormat);
  f.set_attr("format_version", kTokenFormatVersion);
  f.set_attr("tokenizer_sha256", meta.tokenizer_sha256);
  f.set_attr("tokenizer", meta.tokenizer);
  f.set_attr("vocab_size", meta.vocab_size);
  f.set_attr("eot_id", meta.eot_id);
  f.set_attr("num_documents", meta.num_documents);
  f.set_attr("num_tokens", meta.num_tokens);
  f.set_attr("text_bytes", meta.text_bytes);
  f.set_attr("sources", meta.sources);
  f.set_attr("text_field", meta.text_field);
  f.set_attr("created_by", meta.created_by);
  f.close();
}

TokenFile::TokenFile(const std::string& path) : path_(path) {
  h5::File f = h5::File::open_read(path);
  if (!f.has_attr("format") || f.attr_string("format") != kTokenFormat)
    user_error(
        "{}: not a spectra token file (no format=\"{}\" attribute; prepare it with "
        "`spectra prepare`)",
        path, kTokenFormat);
  int64_t version = f.attr_int("format_version");
  if (version != kTokenFormatVersion)
    user_error("{}: token file format version {}, this spectra reads version {}", path, version,
               kTokenFormatVersion);
  meta_.tokenizer_sha256 = f.attr_string("tokenizer_sha256");
  meta_.tokenizer = f.attr_string("tokenizer");
  meta_.vocab_size = f.attr_int("vocab_size");
  meta_.eot_id = f.attr_int("eot_id");
  meta_.num_documents = f.attr_int("num_documents");
  meta_.num_tokens = f.attr_int("num_tokens");
  meta_.text_bytes = f.attr_int("text_bytes");
  meta_.sources = f.attr_string("sources");
  meta_.text_field = f.attr_string("text_field");
  meta_.created_by = f.attr_string("created_by");
  Shape shape = f.shape_of("tokens");
  if (shape.size() != 1 || shape[0] != meta_.num_tokens)
    user_error("{}: /tokens has shape {}, the num_tokens attribute says {}", path, shape_str(shape),
               meta_.num_tokens);
  dtype_ = f.dtype_of("tokens");
  if (dtype_ != DType::u16 && dtype_ != DType::u32)
    user_error("{}: /tokens holds {}, expected u16 or u32", path, dtype_name(dtype_));
  Shape offs = f.shape_of("doc_offsets");
  if (offs.size() != 1 || offs[0] != meta_.num_documents + 1)
    user_error("{}: /doc_offsets has shape {}, expected [{}]", path, shape_str(offs),
               meta_.num_documents + 1);
  data_offset_ = f.contiguous_offset("tokens");
  if (data_offset_ < 0)
    user_error("{}: /tokens is not stored contiguously (not written by `spectra prepare`)", path);
  f.close();
  uint64_t need = uint64_t(data_offset_) + uint64_t(meta_.num_tokens) * dtype_size(dtype_);
  if (std::filesystem::file_size(path) < need)
    user_error("{}: truncated ({} bytes, the tokens end at byte {})", path,
               std::filesystem::file_size(path), need);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) user_error("{}: cannot open ({})", path, std::strerror(errno));
}

TokenFile::TokenFile(TokenFile&& o) noexcept
    : path_(std::move(o.path_)),
      meta_(std::move(o.meta_)),
      dtype_(o.dtype_),
      data_offset_(o.data_offset_),
      fd_(o.fd_) {
  o.fd_ = -1;
}

TokenFile::~TokenFile() {
  if (fd_ >= 0) ::close(fd_);
}

void TokenFile::read(int64_t start, int64_t count, int32_t* out) const {
  SPECTRA_CHECK(start >= 0 && count >= 0 && start + count <= meta_.num_tokens,
                "{}: read of tokens [{}, {}) out of [0, {})", path_, start, start + count,
                meta_.num_tokens);
  size_t es = dtype_size(dtype_), bytes = size_t(count) * es;
  thread_local std::vector<char> buf;
  buf.resize(bytes);
  size_t done = 0;
  off_t at = off_t(data_offset_ + start * int64_t(es));
  while (done < bytes) {
    ssize_t n = ::pread(fd_, buf.data() + done, bytes - done, at + off_t(done));
    if (n <= 0)
      user_error("{}: read failed at byte {} ({})", path_, at + off_t(done),
                 n == 0 ? "unexpected end of file" : std::strerror(errno));
    done += size_t(n);
  }
  // HDF5 wrote native (little-endian) integers.
  if (dtype_ == DType::u16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(buf.data());
    for (int64_t i = 0; i < count; i++) out[i] = int32_t(p[i]);
  } else {
    const uint32_t* p = reinterpret_cast<const uint32_t*>(buf.data());
    for (int64_t i = 0; i < count; i++) out[i] = int32_t(p[i]);
  }
}

std::vector<int64_t> TokenFile::doc_offsets() const {
  h5::File f = h5::File::open_read(path_);
  Tensor t = f.read("doc_offsets");
  const int64_t* p = t.data<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

}  // namespace spectra
