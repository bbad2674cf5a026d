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
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/ternary.h"
#include "tools/commands.h"
#include "tools/safetensors.h"
#include "train/model_file.h"

namespace spectra::tools {

namespace {
struct ExportArgs {
  std::string model, out, dtype = "f16";
};

// The weight the model computes with, in f32: γ·T per scale block for a TriLM projection.
Tensor effective_weight(const Parameter& p, const ModelConfig& c) {
  Tensor w = p.master.to(Device::cpu()).to(DType::f32);
  if (!p.ternary) return w;
  Tensor out = Tensor::empty(w.shape(), DType::f32);
  Tensor gamma = Tensor::empty({c.ternary_shards}, DType::f32);
  kernels::ternary_quantize_groups(w, c.ternary_eps, c.ternary_shards, p.split.axis, out, gamma);
  return out;
}

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

void run(const ExportArgs& a) {
  const DType dtype = a.dtype == "f16" ? DType::f16 : a.dtype == "bf16" ? DType::bf16 : DType::f32;
  LoadedModel m = load_model(a.model, Device::cpu(), DType::f32);
  std::error_code ec;
  std::filesystem::create_directories(a.out, ec);
  if (ec) user_error("{}: cannot create the output directory ({})", a.out, ec.message());
  SafetensorsWriter w;
  for (auto& [name, p] : m.model->named_parameters())
    w.add(name, effective_weight(*p, m.recipe.model).to(dtype));
  const ModelConfig& c = m.recipe.model;
  w.write((std::filesystem::path(a.out) / "model.safetensors").string(),
          {{"format", "pt"},
           {"spectra_kind", model_kind_name(c.kind)},
           {"ternary_shards", std::to_string(c.ternary_shards)}});
  std::ofstream(std::filesystem::path(a.out) / "config.json")
      << hf_config(m, a.dtype).dump(2) << "\n";
  if (!m.tokenizer_json.empty()) {
    std::ofstream(std::filesystem::path(a.out) / "tokenizer.json") << m.tokenizer_json;
    std::ofstream(std::filesystem::path(a.out) / "tokenizer_config.json")
        << tokenizer_config(*m.tokenizer, c).dump(2) << "\n";
  }
  fmt::print("exported {} ({} {}) to {}/: model.safetensors ({}), config.json{}\n", a.model,
             model_kind_name(c.kind), m.recipe.size, a.out, a.dtype,
             m.tokenizer_json.empty() ? "" : ", tokenizer.json, tokenizer_config.json");
}
}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd =
      app.add_subcommand("export", "Write a trained model as a Hugging Face Llama directory");
  cmd->add_option("model", a->model, "Model file written by `spectra train` (train.out)")
      ->required();
  cmd->add_option("-o,--out", a->out, "Output directory")->required();
  cmd->add_option("--dtype", a->dtype, "Weights dtype")
      ->check(CLI::IsMember({"f16", "bf16", "f32"}))
      ->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace spectra::tools
