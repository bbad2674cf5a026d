#include "data/hdf5.h"

#include <filesystem>
#include <mutex>

namespace spectra::h5 {

namespace {
// HDF5 as Debian builds it is not thread-safe: every call into it holds this lock, so a
// checkpoint written by a background thread and the trainer's own reads never run together.
std::recursive_mutex& library_mutex() {
  static std::recursive_mutex m;
  return m;
}
#define H5_LOCKED const std::lock_guard<std::recursive_mutex> h5_lock_(library_mutex())

// Switch off HDF5's automatic error-stack printing once per process.
void quiet() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

hid_t native_type(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_NATIVE_FLOAT;
    case DType::f64:
      return H5T_NATIVE_DOUBLE;
    case DType::i32:
      return H5T_NATIVE_INT32;
    case DType::i64:
      return H5T_NATIVE_INT64;
    case DType::u16:
    case DType::bf16:
    case DType::f16:
      return H5T_NATIVE_UINT16;
    case DType::u32:
      return H5T_NATIVE_UINT32;
    case DType::u8:
      return H5T_NATIVE_UINT8;
  }
  return -1;
}

DType dtype_of_h5(hid_t type, const std::string& where) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT && size == 4) return DType::f32;
  if (cls == H5T_FLOAT && size == 8) return DType::f64;
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 4) return is_signed ? DType::i32 : DType::u32;
    if (size == 8 && is_signed) return DType::i64;
    if (size == 2 && !is_signed) return DType::u16;
    if (size == 1 && !is_signed) return DType::u8;
  }
  user_error("{}: dataset has an element type spectra does not read", where);
}

// Closes an HDF5 handle at scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

// One element: H5Aread writes every element of an attribute, and spectra reads one.
bool scalar(hid_t attr) {
  Handle space{H5Aget_space(attr), H5Sclose};
  return space.id >= 0 && H5Sget_simple_extent_npoints(space.id) == 1;
}
}  // namespace

File File::create(const std::string& path) {
  H5_LOCKED;
  quiet();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0)
    user_error("{}: cannot create HDF5 file (check the directory exists and is writable)", path);
  return File(id, path);
}

File File::open_read(const std::string& path) {
  H5_LOCKED;
  quiet();
  if (!std::filesystem::exists(path)) user_error("{}: no such file", path);
  if (H5Fis_hdf5(path.c_str()) <= 0)
    user_error("{}: not an HDF5 file (truncated or foreign)", path);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) user_error("{}: cannot open as HDF5 (truncated or corrupt)", path);
  return File(id, path);
}

File::~File() {
  H5_LOCKED;
  close();
}

void File::close() {
  H5_LOCKED;
  if (id_ >= 0) {
    H5Fflush(id_, H5F_SCOPE_GLOBAL);
    H5Fclose(id_);
    id_ = -1;
  }
}

void File::create_group(const std::string& name) {
  H5_LOCKED;
  hid_t g = H5Gcreate2(id_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) user_error("{}: cannot create group '{}'", path_, name);
  H5Gclose(g);
}

bool File::exists(const std::string& name) const {
  H5_LOCKED;
  // Check each prefix: H5Lexists fails on a path whose parent is missing.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    std::string prefix = name.substr(0, pos);
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

std::vector<std::string> File::list(const std::string& group) const {
  H5_LOCKED;
  std::vector<std::string> names;
  Handle g{H5Gopen2(id_, group.c_str(), H5P_DEFAULT), H5Gclose};
  if (g.id < 0) user_error("{}: no group '{}'", path_, group);
  H5G_info_t info;
  if (H5Gget_info(g.id, &info) < 0) user_error("{}: cannot list group '{}'", path_, group);
  for (hsize_t i = 0; i < info.nlinks; i++) {
    ssize_t n =
        H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) user_error("{}: cannot list group '{}' (corrupt file)", path_, group);
    std::string s(static_cast<size_t>(n), '\0');
    if (H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), size_t(n) + 1,
                           H5P_DEFAULT) < 0)
      user_error("{}: cannot list group '{}' (corrupt file)", path_, group);
    names.push_back(s);
  }
  return names;
}

void File::write(const std::string& name, const Tensor& t) {
  H5_LOCKED;
  SPECTRA_CHECK(t.device().is_cpu(), "h5 write of a device tensor {}", t.str());
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  Handle space{H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose};
  Handle ds{H5Dcreate2(id_, name.c_str(), native_type(t.dtype()), space.id, H5P_DEFAULT,
                       H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose};
  if (ds.id < 0) user_error("{}: cannot create dataset '{}'", path_, name);
  if (t.numel() > 0 &&
      H5Dwrite(ds.id, native_type(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()) < 0)
    user_error("{}: writing dataset '{}' failed (disk full?)", path_, name);
}

Shape File::shape_of(const std::string& name) const {
  H5_LOCKED;
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) user_error("{}: missing dataset '{}'", path_, name);
  Handle space{H5Dget_space(ds.id), H5Sclose};
  int nd = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

DType File::dtype_of(const std::string& name) const {
  H5_LOCKED;
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) user_error("{}: missing dataset '{}'", path_, name);
  Handle type{H5Dget_type(ds.id), H5Tclose};
  return dtype_of_h5(type.id, path_ + ":" + name);
}

int64_t File::contiguous_offset(const std::string& name) const {
  H5_LOCKED;
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) user_error("{}: missing dataset '{}'", path_, name);
  Handle plist{H5Dget_create_plist(ds.id), H5Pclose};
  if (H5Pget_layout(plist.id) != H5D_CONTIGUOUS || H5Pget_nfilters(plist.id) != 0) return -1;
  haddr_t off = H5Dget_offset(ds.id);
  return off == HADDR_UNDEF ? -1 : int64_t(off);
}

Tensor File::read(const std::string& name) const {
  H5_LOCKED;
  Tensor t = Tensor::empty(shape_of(name), dtype_of(name));
  read_into(name, t);
  return t;
}

void File::read_into(const std::string& name, Tensor& dst) const {
  H5_LOCKED;
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) user_error("{}: missing dataset '{}'", path_, name);
  Handle type{H5Dget_type(ds.id), H5Tclose};
  DType dt = dtype_of_h5(type.id, path_ + ":" + name);
  if (dt != dst.dtype() || shape_numel(shape_of(name)) != dst.numel() || !dst.device().is_cpu())
    user_error("{}: dataset '{}' is {}{}, expected {}", path_, name, dtype_name(dt),
               shape_str(shape_of(name)), dst.str());
  if (dst.numel() > 0 &&
      H5Dread(ds.id, native_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst.raw()) < 0)
    user_error("{}: reading dataset '{}' failed (truncated or corrupt file)", path_, name);
}

void File::read_block(const std::string& name, int axis, int64_t start, int64_t count,
                      Tensor& dst) const {
  H5_LOCKED;
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) user_error("{}: missing dataset '{}'", path_, name);
  Handle type{H5Dget_type(ds.id), H5Tclose};
  const DType dt = dtype_of_h5(type.id, path_ + ":" + name);
  const Shape full = shape_of(name);
  Shape block = full;
  if (axis >= 0 && size_t(axis) < full.size()) block[size_t(axis)] = count;
  if (dt != dst.dtype() || axis < 0 || size_t(axis) >= full.size() || start < 0 ||
      start + count > full[size_t(axis)] || block != dst.shape() || !dst.device().is_cpu())
    user_error("{}: dataset '{}' is {}{}; cannot read [{}, {}) of dimension {} into {}", path_,
               name, dtype_name(dt), shape_str(full), start, start + count, axis, dst.str());
  std::vector<hsize_t> offset(full.size(), 0), extent(block.begin(), block.end());
  offset[size_t(axis)] = hsize_t(start);
  Handle file_space{H5Dget_space(ds.id), H5Sclose};
  Handle mem_space{H5Screate_simple(int(extent.size()), extent.data(), nullptr), H5Sclose};
  if (H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, offset.data(), nullptr, extent.data(),
                          nullptr) < 0 ||
      (dst.numel() > 0 &&
       H5Dread(ds.id, native_type(dt), mem_space.id, file_space.id, H5P_DEFAULT, dst.raw()) < 0))
    user_error("{}: reading a block of dataset '{}' failed (truncated or corrupt file)", path_,
               name);
}

void File::set_attr(const std::string& name, const std::string& value) {
  H5_LOCKED;
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, value.empty() ? 1 : value.size());
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  if (H5Aexists(id_, name.c_str()) > 0) H5Adelete(id_, name.c_str());
  Handle a{H5Acreate2(id_, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  if (a.id < 0 || H5Awrite(a.id, type.id, value.empty() ? "" : value.data()) < 0)
    user_error("{}: cannot write attribute '{}'", path_, name);
}

void File::set_attr(const std::string& name, int64_t value, const std::string& object) {
  H5_LOCKED;
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  if (H5Aexists_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT);
  Handle a{H5Acreate_by_name(id_, object.c_str(), name.c_str(), H5T_NATIVE_INT64, space.id,
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose};
  if (a.id < 0 || H5Awrite(a.id, H5T_NATIVE_INT64, &value) < 0)
    user_error("{}: cannot write attribute '{}' of '{}'", path_, name, object);
}

bool File::has_attr(const std::string& name) const {
  H5_LOCKED;
  return H5Aexists(id_, name.c_str()) > 0;
}

std::string File::attr_string(const std::string& name) const {
  H5_LOCKED;
  if (!has_attr(name)) user_error("{}: missing attribute '{}' (not a spectra file?)", path_, name);
  Handle a{H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (a.id < 0 || H5Tget_class(type.id) != H5T_STRING || !scalar(a.id))
    user_error("{}: attribute '{}' is not a string", path_, name);
  std::string s;
  if (H5Tis_variable_str(type.id) > 0) {  // h5py's kind: HDF5 allocates the bytes
    Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    char* p = nullptr;
    if (H5Aread(a.id, mem.id, &p) < 0) user_error("{}: cannot read attribute '{}'", path_, name);
    s = p ? p : "";
    H5free_memory(p);
  } else {
    s.assign(H5Tget_size(type.id), '\0');
    if (H5Aread(a.id, type.id, s.data()) < 0)
      user_error("{}: cannot read attribute '{}'", path_, name);
  }
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

int64_t File::attr_int(const std::string& name, const std::string& object) const {
  H5_LOCKED;
  if (H5Aexists_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT) <= 0)
    user_error("{}: missing attribute '{}' of '{}' (not a spectra file?)", path_, name, object);
  Handle a{H5Aopen_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  int64_t v = 0;
  if (a.id < 0 || !scalar(a.id) || H5Aread(a.id, H5T_NATIVE_INT64, &v) < 0)
    user_error("{}: cannot read attribute '{}' of '{}'", path_, name, object);
  return v;
}

}  // namespace spectra::h5
