#include "train/model_file.h"

#include <filesystem>

#include "data/hdf5.h"

namespace spectra {

static constexpr const char* kFormat = "spectra-model";
static constexpr int64_t kFormatVersion = 1;

void save_model(const std::string& path, const LM& model, const Recipe& recipe) {
  std::string tmp = path + ".tmp";
  {
    h5::File f = h5::File::create(tmp);
    f.set_attr("format", std::string(kFormat));
    f.set_attr("format_version", kFormatVersion);
    f.set_attr("recipe", recipe.text);
    f.create_group("params");
    for (auto& [name, p] : model.named_parameters())
      f.write("params/" + name, p->master.to(Device::cpu()).to(DType::f32));
    f.close();
  }
  std::filesystem::rename(tmp, path);  // atomic on POSIX: readers see the old or the new file
}

LoadedModel load_model(const std::string& path, Device device, DType compute_dtype) {
  h5::File f = h5::File::open_read(path);
  if (!f.has_attr("format") || f.attr_string("format") != kFormat)
    user_error("{}: not a spectra model file (no format=\"{}\" attribute)", path, kFormat);
  int64_t version = f.attr_int("format_version");
  if (version != kFormatVersion)
    user_error("{}: model format version {} is not supported (this spectra reads {})", path,
               version, kFormatVersion);
  LoadedModel out;
  out.recipe = parse_recipe(f.attr_string("recipe"), path + ":recipe");
  out.model =
      std::make_unique<LM>(out.recipe.model, LayerOptions{DType::f32, device}, compute_dtype);
  for (auto& [name, p] : out.model->named_parameters()) {
    std::string ds = "params/" + name;
    if (!f.exists(ds)) user_error("{}: missing parameter '{}'", path, name);
    Tensor t = f.read(ds);
    if (t.shape() != p->master.shape() || t.dtype() != DType::f32)
      user_error("{}: parameter '{}' is {}, the recipe's model expects f32{}", path, name, t.str(),
                 shape_str(p->master.shape()));
    p->master.copy_from(t.to(device));
  }
  out.model->refresh_compute();
  return out;
}

}  // namespace spectra
