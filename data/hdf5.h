// A thin RAII layer over the HDF5 C API for spectra's files (token datasets, models,
// checkpoints). Every call is checked; failures throw a UserError naming the file and object,
// since they nearly always mean a missing, truncated or foreign file. HDF5's own error stack
// printing is switched off: spectra prints one line instead.
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

#include "core/tensor.h"

namespace spectra::h5 {

class File {
 public:
  static File create(const std::string& path);  // truncates
  static File open_read(const std::string& path);
  File(File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }
  File(const File&) = delete;
  ~File();
  void close();  // flushes; also done by the destructor
  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }

  void create_group(const std::string& name);
  bool exists(const std::string& name) const;  // link exists ("a/b")
  std::vector<std::string> list(const std::string& group) const;

  // Datasets hold a CPU tensor's dtype (f32, f64, i32, i64, u16, u32, u8; bf16/f16 as u16 bits).
  void write(const std::string& name, const Tensor& t);
  Tensor read(const std::string& name) const;
  // Into an existing CPU tensor of the dataset's dtype and element count (no allocation).
  void read_into(const std::string& name, Tensor& dst) const;
  // Only [start, start + count) along `axis` of the dataset (all of the other dimensions), into
  // a CPU tensor of that block's shape: one tensor-parallel shard, without reading the rest.
  void read_block(const std::string& name, int axis, int64_t start, int64_t count,
                  Tensor& dst) const;
  Shape shape_of(const std::string& name) const;
  DType dtype_of(const std::string& name) const;
  // Where a contiguous, unfiltered dataset's elements start in the file (so they can be read
  // with plain file I/O, from any thread); -1 for chunked or unallocated storage.
  int64_t contiguous_offset(const std::string& name) const;

  void set_attr(const std::string& name, const std::string& value);  // on the root group
  // Integer attributes on the root group or, given `object`, on a group or dataset.
  void set_attr(const std::string& name, int64_t value, const std::string& object = ".");
  std::string attr_string(const std::string& name) const;  // user error if missing
  int64_t attr_int(const std::string& name, const std::string& object = ".") const;
  bool has_attr(const std::string& name) const;

 private:
  File(hid_t id, std::string path) : id_(id), path_(std::move(path)) {}
  hid_t id_ = -1;
  std::string path_;
};

}  // namespace spectra::h5
