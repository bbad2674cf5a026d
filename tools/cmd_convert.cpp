// spectra convert HF_DIR -o MODEL.h5: a Hugging Face LlamaForCausalLM directory (config.json,
// model.safetensors or its sharded index, tokenizer.json) as a spectra model file, e.g. a released
// SpectraSuite checkpoint, to evaluate, quantize or continue training it.
//
// A TriLM's projections are stored as their effective weights γ·T (per scale block: the
// config's pretraining_model_parallel blocks, split as tensor parallelism splits each
// projection). They become latent weights W = v·T, with v chosen so that spectra's quantizer
// (γ = eps + mean|W|, T = clamp(round(W/γ))) gives back exactly those trits and that γ (checked).
// --kind auto tells TriLMs from FloatLMs by that structure.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tools/commands.h"
#include "tools/safetensors.h"
#include "train/model_file.h"

namespace spectra::tools {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ConvertArgs {
  std::string dir, out, kind = "auto";
};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) user_error("{}: no such file", p.string());
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    user_error("{}: not valid JSON ({})", p.string(), e.what());
  }
}

// The model's tensors: from model.safetensors, or the shards an index names.
class Weights {
 public:
  explicit Weights(const fs::path& dir) {
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
      json j = read_json(index);
      if (!j.contains("weight_map") || !j["weight_map"].is_object())
        user_error("{}: no \"weight_map\" object", index.string());
      for (auto& [name, file] : j["weight_map"].items()) {
        const std::string f = (dir / file.get<std::string>()).string();
        if (!files_.count(f)) files_.emplace(f, SafetensorsReader(f));
        where_[name] = f;
      }
    } else {
      const std::string f = (dir / "model.safetensors").string();
      files_.emplace(f, SafetensorsReader(f));
      for (const std::string& n : files_.at(f).names()) where_[n] = f;
    }
  }
  Tensor read(const std::string& name, const Shape& shape) const {
    auto it = where_.find(name);
    if (it == where_.end()) user_error("missing tensor '{}' in the checkpoint", name);
    const SafetensorsReader& r = files_.at(it->second);
    if (r.shape(name) != shape)
      user_error("{}: tensor '{}' is {}, config.json implies {}", r.path(), name,
                 shape_str(r.shape(name)), shape_str(shape));
    return r.read_f32(name);
  }
  size_t count() const { return where_.size(); }

 private:
  std::map<std::string, SafetensorsReader> files_;
  std::map<std::string, std::string> where_;
};

// config.json as a recipe's model section; refuses what a Spectra model cannot represent.
std::string model_yaml(const json& c, const std::string& path, int64_t vocab_size,
                       const std::string& kind, int64_t shards) {
  auto get = [&](const char* key) {
    if (!c.contains(key) || !c[key].is_number())
      user_error("{}: \"{}\" is missing or not a number", path, key);
    return c[key].get<double>();
  };
  const std::string type = c.value("model_type", "");
  if (type != "llama")
    user_error("{}: model_type is \"{}\"; spectra reads llama models", path, type);
  auto refuse = [&](const char* key, const std::string& what) {
    user_error("{}: \"{}\" is {}; {}", path, key, c[key].dump(), what);
  };
  if (c.contains("num_key_value_heads") && !c["num_key_value_heads"].is_null() &&
      c["num_key_value_heads"] != c.value("num_attention_heads", json()))
    refuse("num_key_value_heads", "grouped key/value heads are not supported");
  for (const char* key : {"attention_bias", "mlp_bias", "tie_word_embeddings"})
    if (c.value(key, false)) refuse(key, "spectra models have no biases and untied embeddings");
  if (c.contains("rope_scaling") && !c["rope_scaling"].is_null())
    refuse("rope_scaling", "only plain RoPE is supported");
  if (c.value("hidden_act", "silu") != "silu")
    refuse("hidden_act", "spectra models use SwiGLU (silu)");
  return fmt::format(
      "model: {{kind: {}, size: \"{}\", vocab_size: {}, vocab_rows: {}, hidden: {}, ffn: {}, "
      "heads: {}, layers: {}, context: {}, rope_theta: {}, norm_eps: {}, ternary_shards: {}}}\n",
      kind, fs::path(path).parent_path().filename().string(), vocab_size,
      int64_t(get("vocab_size")), int64_t(get("hidden_size")), int64_t(get("intermediate_size")),
      int64_t(get("num_attention_heads")), int64_t(get("num_hidden_layers")),
      int64_t(get("max_position_embeddings")), c.value("rope_theta", 10000.0), get("rms_norm_eps"),
      shards);
}

// Per scale block of an effective TriLM weight: its one nonzero magnitude γ (0 when all zero),
// or false when a block holds several (not a TriLM with these blocks).
bool ternary_scales(const Tensor& e, int64_t blocks, int axis, std::vector<float>& gamma) {
  const int64_t rows = e.size(0), cols = e.size(1);
  gamma.assign(size_t(blocks), 0.f);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      const float a = std::fabs(e.data<float>()[r * cols + c]);
      if (a == 0) continue;
      float& g = gamma[size_t(axis == 0 ? r / (rows / blocks) : c / (cols / blocks))];
      if (g != 0 && g != a) return false;
      g = a;
    }
  return true;
}

// Latent weights v·sign(e) per block, v such that eps + mean|W| rounds to the block's γ in f32
// exactly as kernels::ternary_quantize_groups computes it.
Tensor latent(const Tensor& e, int64_t blocks, int axis, const std::vector<float>& gamma,
              float eps) {
  const int64_t rows = e.size(0), cols = e.size(1);
  const int64_t br = axis == 0 ? rows / blocks : rows, bc = axis == 1 ? cols / blocks : cols;
  Tensor w = Tensor::zeros(e.shape());
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t r0 = axis == 0 ? b * br : 0, c0 = axis == 1 ? b * bc : 0;
    int64_t nnz = 0;
    for (int64_t r = r0; r < r0 + br; r++)
      for (int64_t c = c0; c < c0 + bc; c++) nnz += e.data<float>()[r * cols + c] != 0;
    if (nnz == 0) continue;
    const double n = double(br * bc), g = gamma[size_t(b)];
    float v = float((g - double(eps)) * n / double(nnz));
    auto gamma_of = [&](float x) { return float(double(eps) + double(x) * double(nnz) / n); };
    for (int i = 0; i < 64 && gamma_of(v) != gamma[size_t(b)]; i++)
      v = std::nextafter(v, gamma_of(v) < gamma[size_t(b)] ? INFINITY : 0.f);
    for (int64_t r = r0; r < r0 + br; r++)
      for (int64_t c = c0; c < c0 + bc; c++) {
        const float x = e.data<float>()[r * cols + c];
        w.data<float>()[r * cols + c] = x > 0 ? v : x < 0 ? -v : 0.f;
      }
  }
  return w;
}

void run(const ConvertArgs& a) {
  const fs::path dir(a.dir);
  if (!fs::is_directory(dir)) user_error("{}: not a directory", a.dir);
  const std::string config_path = (dir / "config.json").string();
  const json config = read_json(config_path);
  const fs::path tok_path = dir / "tokenizer.json";
  if (!fs::exists(tok_path))
    user_error("{}: no tokenizer.json (spectra models carry their tokenizer)", a.dir);
  Tokenizer tok = Tokenizer::load(tok_path.string());
  const int64_t rows = config.value("vocab_size", int64_t(0));
  if (tok.vocab_size() > rows)
    user_error("{}: {} tokens, more than config.json's vocab_size of {} embedding rows",
               tok_path.string(), tok.vocab_size(), rows);
  Weights weights(dir);
  const int64_t shards = config.value("pretraining_model_parallel", int64_t(1));

  // Build the model as a FloatLM first (its parameters are the files' tensors), then decide.
  auto recipe_for = [&](const std::string& kind) {
    const std::string text =
        model_yaml(config, config_path, tok.vocab_size(), kind, shards) +
        fmt::format("data: {{tokenizer: \"{}\"}}\n", fs::absolute(tok_path).string()) +
        "train: {device: cpu, precision: f32}\n";
    return parse_recipe(text, config_path);
  };
  Recipe recipe = recipe_for("floatlm");
  LM probe(recipe.model, LayerOptions{DType::f32, Device::cpu()}, DType::f32);
  std::map<std::string, Tensor> tensors;
  for (auto& [name, p] : probe.named_parameters()) tensors[name] = weights.read(name, p->full);
  if (weights.count() != tensors.size())
    user_error(
        "{}: the checkpoint has {} tensors, a Llama model of this config has {} (biases, "
        "tied or extra weights are not supported)",
        a.dir, weights.count(), tensors.size());

  // A TriLM when every projection has one magnitude per scale block.
  std::map<std::string, std::vector<float>> gammas;
  bool ternary = a.kind != "floatlm";
  for (auto& [name, p] : probe.named_parameters()) {
    if (!ternary) break;
    if (name.find("_proj.") == std::string::npos) continue;  // the seven projections
    if (!ternary_scales(tensors[name], shards, p->split.axis, gammas[name])) {
      if (a.kind == "trilm")
        user_error(
            "{}: '{}' is not ternary with {} scale blocks (pretraining_model_parallel); "
            "convert it as --kind floatlm",
            a.dir, name, shards);
      ternary = false;
      break;
    }
  }
  recipe = recipe_for(ternary ? "trilm" : "floatlm");
  const ModelConfig& c = recipe.model;
  LM model(c, LayerOptions{DType::f32, Device::cpu()}, DType::f32);
  for (auto& [name, p] : model.named_parameters()) {
    Tensor w = tensors[name];
    if (p->ternary) {  // scale blocks follow the TP split (layers/linear.h)
      w = latent(w, c.ternary_shards, p->split.axis, gammas[name], c.ternary_eps);
      const Tensor eff = effective_weight(*p, w, c.ternary_eps, c.ternary_shards);
      for (int64_t i = 0; i < eff.numel(); i++)
        SPECTRA_CHECK(eff.data<float>()[i] == tensors[name].data<float>()[i],
                      "convert: the latent weights of '{}' do not reproduce element {}", name, i);
    }
    p->master.copy_from(w);
  }
  model.refresh_compute();
  save_model(a.out, model, recipe);
  fmt::print("converted {} ({}, {} layers, hidden {}{}) to {}\n", a.dir, model_kind_name(c.kind),
             c.layers, c.hidden,
             c.ternary() ? fmt::format(", {} scale blocks per projection", c.ternary_shards) : "",
             a.out);
}

}  // namespace

void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Read a Hugging Face LlamaForCausalLM directory into a spectra model file");
  cmd->add_option("dir", a->dir,
                  "Directory with config.json, model.safetensors (or its index) "
                  "and tokenizer.json")
      ->required();
  cmd->add_option("-o,--out", a->out, "Output model file")->required();
  cmd->add_option("--kind", a->kind,
                  "auto (a TriLM when every projection is ternary per scale block), trilm or "
                  "floatlm")
      ->check(CLI::IsMember({"auto", "trilm", "floatlm"}))
      ->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace spectra::tools
