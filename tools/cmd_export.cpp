// spectra export MODEL -o FILE.gguf --format gguf [--type f16|tq1_0|tq2_0]: the same for llama.cpp
// (tools/export_gguf.h).
// spectra export MODEL -o DIR [--dtype f16|bf16|f32]: a trained model file as a Hugging Face
// LlamaForCausalLM directory (SPECTRA.md, Interop formats):
//   model.safetensors  every parameter under its HF name; a TriLM's projections "unpacked", as
//                      the released checkpoints store them: the effective weights γ·T, so each
//                      matrix holds 0 and ±γ of each of its scale blocks (ternary_shards)
//   config.json        the LlamaForCausalLM configuration (vocab_size = embedding rows)
//   tokenizer.json     the model's tokenizer, when it was trained on tokenized data, and
//   tokenizer_config.json  what AutoTokenizer needs beside it: the generic fast tokenizer class
//                      and <|endoftext|> as bos, eos and unk (GPT-NeoX's convention); without
//                      it transformers loads no special tokens and lm-evaluation-harness fails
// With --gptq (a QuantLM from `spectra quantize`): the projections in GPTQ's packed layout
// (quant/pack.h: qweight, qzeros, scales, g_idx) and config.json's quantization_config, which
// GPTQ-aware loaders (GPTQModel, transformers with it, vLLM) read. Symmetric grids are written
// as format v1 ("gptq"), the common one; asymmetric ones as v2 ("gptq_v2"), since v1's stored
// zero − 1 cannot hold a zero point of 0.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "quant/pack.h"
#include "quant/quantlm.h"
#include "tools/commands.h"
#include "tools/export_gguf.h"
#include "tools/safetensors.h"
#include "train/model_file.h"

namespace spectra::tools {

namespace {
struct ExportArgs {
  std::string model, out, dtype = "f16", format = "hf";
  bool gptq = false;
  GgufOptions gguf;
};

// A float recipe value as the decimal it was written as (1e-05, not 9.99999974e-06).
double decimal(float x) { return std::stod(fmt::format("{}", x)); }

nlohmann::ordered_json hf_config(const LoadedModel& m, const std::string& dtype) {
  const ModelConfig& c = m.recipe.model;
  nlohmann::ordered_json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", c.hidden},
      {"intermediate_size", c.ffn},
      {"num_hidden_layers", c.layers},
      {"num_attention_heads", c.heads},
      {"num_key_value_heads", c.heads},
      {"hidden_act", "silu"},
      {"max_position_embeddings", c.context},
      {"rms_norm_eps", decimal(c.norm_eps)},
      {"rope_theta", decimal(c.rope_theta)},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"tie_word_embeddings", false},
      {"vocab_size", c.vocab_rows},
      {"torch_dtype", dtype == "f16"    ? "float16"
                      : dtype == "bf16" ? "bfloat16"
                                        : "float32"},
  };
  if (m.tokenizer) {  // GPT-NeoX: id 0, <|endoftext|>, is both
    const int32_t eot = m.tokenizer->token_to_id("<|endoftext|>");
    if (eot >= 0) j["bos_token_id"] = eot, j["eos_token_id"] = eot;
  }
  if (c.ternary()) j["pretraining_model_parallel"] = c.ternary_shards;
  return j;
}

nlohmann::ordered_json tokenizer_config(const Tokenizer& tok, const ModelConfig& c) {
  nlohmann::ordered_json j = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                              {"model_max_length", c.context},
                              {"clean_up_tokenization_spaces", false}};
  // Only tokens the tokenizer has: AutoTokenizer would add a missing one as a new token.
  if (tok.token_to_id("<|endoftext|>") >= 0)
    for (const char* k : {"bos_token", "eos_token", "unk_token"}) j[k] = "<|endoftext|>";
  return j;
}

// The QuantLM's projections as packed GPTQ tensors; returns config.json's quantization_config.
nlohmann::ordered_json add_gptq(SafetensorsWriter& w, const LoadedModel& m, const quant::QuantLM& q,
                                const std::string& path) {
  const quant::Options& o = q.settings.options;
  if (quant::packing_multiple(o.grid.bits) == 0)
    user_error(
        "{}: {}-bit; GPTQ's packed format has layouts for 2, 3, 4 and 8 bits only (export "
        "it without --gptq: the dequantized weights)",
        path, o.grid.bits);
  std::map<std::string, const Parameter*> params;
  for (auto& [name, p] : m.model->named_parameters()) params[name] = p;
  for (const quant::ProjectionResult& r : q.projections) {
    auto it = params.find(r.name);
    if (it == params.end()) user_error("{}: quantization of '{}', not a parameter", path, r.name);
    const Tensor& weight = it->second->master;
    const int64_t out = weight.size(0), in = weight.size(1);
    if (r.q.scales.size(1) != out || r.q.g_idx.numel() != in)
      user_error("{}: the quantization tables of '{}' do not fit its shape {}", path, r.name,
                 shape_str(weight.shape()));
    if (in % 32 != 0 || out % 32 != 0)
      user_error("{}: '{}' is {}; GPTQ's packing needs both dimensions to be multiples of 32", path,
                 r.name, shape_str(weight.shape()));
    Tensor codes = quant::recover_codes(weight, r.q.scales, r.q.zeros, r.q.g_idx, o.grid,
                                        fmt::format("{}: {}", path, r.name));
    Tensor transposed = Tensor::empty({in, out}, DType::i32);  // qweight packs along the inputs
    for (int64_t i = 0; i < out; i++)
      for (int64_t j = 0; j < in; j++)
        transposed.data<int32_t>()[j * out + i] = codes.data<int32_t>()[i * in + j];
    Tensor zeros = Tensor::empty(r.q.zeros.shape(), DType::i32);
    for (int64_t i = 0; i < zeros.numel(); i++)
      zeros.data<int32_t>()[i] = int32_t(r.q.zeros.data<float>()[i]);
    const std::string base = r.name.substr(0, r.name.size() - std::string(".weight").size());
    w.add(base + ".qweight", quant::pack_codes(transposed, o.grid.bits, true));
    w.add(base + ".qzeros", quant::pack_codes(zeros, o.grid.bits, false, o.grid.sym ? 1 : 0));
    w.add(base + ".scales", r.q.scales.to(DType::f16));
    w.add(base + ".g_idx", r.q.g_idx);
  }
  return {{"quant_method", "gptq"},
          {"bits", o.grid.bits},
          {"group_size", o.group_size > 0 ? o.group_size : -1},
          {"desc_act", o.act_order},
          {"sym", o.grid.sym},
          {"checkpoint_format", o.grid.sym ? "gptq" : "gptq_v2"},
          {"damp_percent", o.damp},
          {"true_sequential", true},
          {"static_groups", false}};
}

void run(const ExportArgs& a) {
  if (a.format == "gguf") {
    if (a.gptq) user_error("--gptq writes a Hugging Face directory; drop --format gguf");
    LoadedModel m = load_model(a.model, Device::cpu(), DType::f32);
    export_gguf(m, a.model, a.out, a.gguf);
    fmt::print("exported {} ({} {}) to {} (GGUF, {})\n", a.model,
               model_kind_name(m.recipe.model.kind), m.recipe.size, a.out, a.gguf.type);
    return;
  }
  const DType dtype = a.dtype == "f16" ? DType::f16 : a.dtype == "bf16" ? DType::bf16 : DType::f32;
  LoadedModel m = load_model(a.model, Device::cpu(), DType::f32);
  std::optional<quant::QuantLM> q = quant::read_quantlm(a.model);
  if (a.gptq && !q)
    user_error("{}: not a QuantLM; --gptq exports a model from `spectra quantize`", a.model);
  std::error_code ec;
  std::filesystem::create_directories(a.out, ec);
  if (ec) user_error("{}: cannot create the output directory ({})", a.out, ec.message());
  SafetensorsWriter w;
  std::set<std::string> packed;
  nlohmann::ordered_json quantization;
  if (a.gptq) {
    quantization = add_gptq(w, m, *q, a.model);
    for (const quant::ProjectionResult& r : q->projections) packed.insert(r.name);
  }
  for (auto& [name, p] : m.model->named_parameters())
    if (!packed.count(name))
      w.add(name, effective_weight(*p, p->master, m.recipe.model.ternary_eps,
                                   m.recipe.model.ternary_shards)
                      .to(dtype));
  const ModelConfig& c = m.recipe.model;
  w.write((std::filesystem::path(a.out) / "model.safetensors").string(),
          {{"format", "pt"},
           {"spectra_kind", model_kind_name(c.kind)},
           {"ternary_shards", std::to_string(c.ternary_shards)}});
  nlohmann::ordered_json config = hf_config(m, a.dtype);
  if (a.gptq) config["quantization_config"] = quantization;
  std::ofstream(std::filesystem::path(a.out) / "config.json") << config.dump(2) << "\n";
  if (!m.tokenizer_json.empty()) {
    std::ofstream(std::filesystem::path(a.out) / "tokenizer.json") << m.tokenizer_json;
    std::ofstream(std::filesystem::path(a.out) / "tokenizer_config.json")
        << tokenizer_config(*m.tokenizer, c).dump(2) << "\n";
  }
  fmt::print("exported {} ({} {}{}) to {}/: model.safetensors ({}{}), config.json{}\n", a.model,
             model_kind_name(c.kind), m.recipe.size,
             q ? fmt::format(", {}-bit {}", q->settings.options.grid.bits,
                             quant::method_name(q->settings.options.method))
               : "",
             a.out, a.dtype, a.gptq ? ", projections packed" : "",
             m.tokenizer_json.empty() ? "" : ", tokenizer.json, tokenizer_config.json");
}
}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write a model as a Hugging Face Llama directory or a GGUF file");
  cmd->add_option("model", a->model, "Model file written by `spectra train` (train.out)")
      ->required();
  cmd->add_option("-o,--out", a->out, "Output directory (hf) or file (gguf)")->required();
  cmd->add_option("--format", a->format,
                  "hf: a Hugging Face LlamaForCausalLM directory; gguf: a llama.cpp file")
      ->check(CLI::IsMember({"hf", "gguf"}))
      ->capture_default_str();
  cmd->add_option("--type", a->gguf.type,
                  "gguf: the projections' type (tq1_0 and tq2_0: a TriLM's ternary blocks)")
      ->check(CLI::IsMember({"f16", "tq1_0", "tq2_0"}))
      ->capture_default_str();
  cmd->add_option("--tq-fallback", a->gguf.tq_fallback,
                  "gguf: a TriLM projection TQ cannot hold exactly (a 256-block spanning two "
                  "scale blocks): error, or keep it in f16")
      ->check(CLI::IsMember({"error", "f16"}))
      ->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "hf: weights dtype")
      ->check(CLI::IsMember({"f16", "bf16", "f32"}))
      ->capture_default_str();
  cmd->add_flag("--gptq", a->gptq,
                "A QuantLM's projections in GPTQ's packed layout (qweight, qzeros, scales, g_idx) "
                "with a quantization_config, for GPTQ-aware loaders");
  cmd->callback([a] { run(*a); });
}

}  // namespace spectra::tools
