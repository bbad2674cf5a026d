#include "train/model_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "core/log.h"
#include "data/hdf5.h"
#include "data/text.h"

namespace spectra {

static constexpr const char* kFormat = "spectra-model";
static constexpr int64_t kFormatVersion = 1;
static constexpr const char* kTokenizer = "tokenizer.json";

void save_model(const std::string& path, const LM& model, const Recipe& recipe, bool write,
                const std::function<void(h5::File&)>& extra, const Tensor& weights) {
  const std::string tmp = path + ".tmp";
  std::optional<h5::File> f;
  if (write) {
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    f.emplace(h5::File::create(tmp));
    f->set_attr("format", std::string(kFormat));
    f->set_attr("format_version", kFormatVersion);
    f->set_attr("recipe", recipe.text);
    if (!recipe.data.tokenizer.empty()) {  // the model file alone can encode and decode
      const std::string json = read_text_file(recipe.data.tokenizer);
      f->write(kTokenizer, Tensor::from(std::vector<uint8_t>(json.begin(), json.end()),
                                        {int64_t(json.size())}));
    }
    f->create_group("params");
  }
  int64_t off = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    const Tensor local = weights.defined() ? weights.slice(off, off + n).view(p->shape) : p->master;
    off += n;
    Tensor full = full_tensor(*p, local, model.tp_group());  // collective when split
    if (f) f->write("params/" + name, full.to(DType::f32));
  }
  if (!f) return;
  if (extra) extra(*f);
  f->close();
  std::filesystem::rename(tmp, path);  // atomic on POSIX: readers see the old or the new file
}

void check_model_fits(const std::string& path, const ModelConfig& file, const ModelConfig& want,
                      bool lenient, const std::string& fix) {
  for (const ConfigDifference& d : function_differences(file, want)) {
    if (lenient && !d.shape) {
      log::warn("{}: the file's model has {} {}, the recipe {}: continuing with the recipe's", path,
                d.key, d.have, d.want);
      continue;
    }
    user_error("{}: the file's model has {} {}, the recipe {}; {} (--set {}={})", path, d.key,
               d.have, d.want, fix, d.key, d.have);
  }
}

void check_stored_parameter(const std::string& path, const std::string& name, const Shape& stored,
                            DType dtype, const Shape& want) {
  if (stored != want || dtype != DType::f32)
    user_error("{}: parameter '{}' is {}{}, the model expects f32{}", path, name, dtype_name(dtype),
               shape_str(stored), shape_str(want));
}

namespace {
// Every parameter's full tensor from the file, this rank's block of it into its master.
void read_parameters(h5::File& f, const std::string& path, LM& model) {
  for (auto& [name, p] : model.named_parameters()) {
    const std::string ds = "params/" + name;
    if (!f.exists(ds)) user_error("{}: missing parameter '{}'", path, name);
    check_stored_parameter(path, name, f.shape_of(ds), f.dtype_of(ds), p->full);
    const Tensor full = f.read(ds);
    if (p->split.parts == 1) {
      p->master.copy_from(full.to(p->master.device()).to(p->master.dtype()));
      continue;
    }
    Tensor local = Tensor::empty(p->shape, DType::f32);
    for (int64_t i = 0; i < local.numel(); i++)
      local.data<float>()[i] = full.data<float>()[p->split.full_index(p->full, i)];
    p->master.copy_from(local.to(p->master.device()).to(p->master.dtype()));
  }
}
}  // namespace

LoadedModel load_model(const std::string& path, Device device, DType compute_dtype,
                       const dist::Group* tp) {
  h5::File f = h5::File::open_read(path);
  if (!f.has_attr("format") || f.attr_string("format") != kFormat)
    user_error("{}: not a spectra model file (no format=\"{}\" attribute)", path, kFormat);
  int64_t version = f.attr_int("format_version");
  if (version != kFormatVersion)
    user_error("{}: model format version {} is not supported (this spectra reads {})", path,
               version, kFormatVersion);
  LoadedModel out;
  out.recipe = parse_recipe(f.attr_string("recipe"), path + ":recipe");
  const ModelConfig& c = out.recipe.model;
  if (const int n = tp ? tp->size() : 1; c.heads % n != 0 || c.ffn % n != 0 ||
                                         c.vocab_rows % n != 0 ||
                                         (c.ternary() && c.ternary_shards % n != 0))
    user_error(
        "{}: cannot split this model over {} ranks: tensor parallelism needs a divisor of "
        "its heads ({}), ffn ({}) and vocabulary rows ({}){}",
        path, n, c.heads, c.ffn, c.vocab_rows,
        c.ternary()
            ? fmt::format(" and of its TriLM scale blocks per projection ({})", c.ternary_shards)
            : "");
  out.model =
      std::make_unique<LM>(out.recipe.model, LayerOptions{DType::f32, device, tp}, compute_dtype);
  read_parameters(f, path, *out.model);
  out.model->refresh_compute();
  if (f.exists(kTokenizer)) {
    if (f.dtype_of(kTokenizer) != DType::u8 || f.shape_of(kTokenizer).size() != 1)
      user_error("{}: '{}' is not a 1-D u8 dataset", path, kTokenizer);
    Tensor t = f.read(kTokenizer);
    out.tokenizer_json.assign(t.data<uint8_t>(), t.data<uint8_t>() + t.numel());
    out.tokenizer = std::make_unique<Tokenizer>(
        Tokenizer::parse(out.tokenizer_json, fmt::format("{}:{}", path, kTokenizer)));
  }
  return out;
}

void load_weights(const std::string& path, LM& model) {
  h5::File f = h5::File::open_read(path);
  if (!f.has_attr("format") || f.attr_string("format") != kFormat)
    user_error("{}: not a spectra model file (no format=\"{}\" attribute)", path, kFormat);
  const Recipe stored = parse_recipe(f.attr_string("recipe"), path + ":recipe");
  check_model_fits(path, stored.model, model.config(), true,
                   "train.init starts from weights of the recipe's shape");
  read_parameters(f, path, model);
  model.refresh_compute();
}

}  // namespace spectra
