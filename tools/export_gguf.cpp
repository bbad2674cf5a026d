// The GGUF export. Tensors are renamed to llama.cpp's names, q and k rows are permuted from
// Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved one (as its converter,
// convert_hf_to_gguf.py, does), norms are F32, the embedding and head F16, and the projections
// F16 or, for a TriLM, TQ1_0/TQ2_0 blocks whose scale is the block's max |w| = γ exactly (up to
// f16). The tokenizer goes in as llama.cpp's "gpt2" byte-level BPE: tokens, types, merges.
#include "tools/export_gguf.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/half.h"
#include "tools/gguf.h"

namespace spectra {

namespace {

// llama.cpp's token types (llama_token_type) and file types (llama_ftype).
enum : int32_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5 };
uint32_t file_type(const std::string& type) {
  return type == "f16" ? 1 : type == "tq1_0" ? 36 : 37;
}

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight".
std::string gguf_name(const std::string& hf) {
  static const std::pair<const char*, const char*> kParts[] = {
      {"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  const size_t dot = hf.find('.', prefix.size());
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1, hf.size() - dot - 1 - std::string(".weight").size());
  for (const auto& [from, to] : kParts)
    if (rest == from) return fmt::format("blk.{}.{}.weight", layer, to);
  throw Error(fmt::format("gguf: no llama.cpp name for '{}'", hf));
}

// Row h·hd + a·hd/2 + b (a: which half of the head) moves to h·hd + 2b + a.
Tensor permute_rope_rows(const Tensor& w, int64_t heads) {
  const int64_t rows = w.size(0), cols = w.size(1), hd = rows / heads;
  Tensor out = Tensor::empty(w.shape(), DType::f32);
  for (int64_t h = 0; h < heads; h++)
    for (int64_t a = 0; a < 2; a++)
      for (int64_t b = 0; b < hd / 2; b++)
        std::copy_n(w.data<float>() + (h * hd + a * hd / 2 + b) * cols, cols,
                    out.data<float>() + (h * hd + 2 * b + a) * cols);
  return out;
}

std::vector<uint8_t> as_bytes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw());
  return std::vector<uint8_t>(p, p + t.nbytes());
}

std::vector<uint8_t> f16_bytes(const Tensor& w) { return as_bytes(w.to(DType::f16)); }

// TQ blocks of an effective ternary weight, or "" and the reason it cannot be held exactly.
std::string tq_blocks(const Tensor& w, GgmlType type, std::vector<uint8_t>& out) {
  const int64_t rows = w.size(0), cols = w.size(1);
  if (cols % 256 != 0) return fmt::format("its rows of {} weights are not whole 256-blocks", cols);
  const int64_t bytes = ggml_row_bytes(type, 256);
  out.resize(size_t(rows * cols / 256 * bytes));
  for (int64_t b = 0; b < rows * cols / 256; b++) {
    const float* x = w.data<float>() + b * 256;
    float mag = 0;  // the one nonzero magnitude a TQ block can hold
    for (int64_t i = 0; i < 256; i++) {
      const float a = std::fabs(x[i]);
      if (a == 0) continue;
      if (mag != 0 && a != mag)
        return fmt::format(
            "block {} of row {} spans two scale blocks (|w| = {} and {}): its "
            "tensor-parallel shards do not split rows at multiples of 256",
            b % (cols / 256), b / (cols / 256), mag, a);
      mag = a;
    }
    (type == GgmlType::tq1_0 ? quantize_tq1_0 : quantize_tq2_0)(x, out.data() + b * bytes);
  }
  return "";
}

// The tokenizer.json as llama.cpp's gpt2 vocabulary, padded with unused tokens to `rows`.
void add_tokenizer(GgufWriter& g, const std::string& text, int64_t rows, const std::string& where) {
  const nlohmann::json j = nlohmann::json::parse(text);
  std::vector<std::string> tokens(static_cast<size_t>(rows));
  std::vector<int32_t> types(size_t(rows), kUnused);
  for (auto& [token, id] : j.at("model").at("vocab").items()) {
    const int64_t i = id.get<int64_t>();
    if (i >= rows) user_error("{}: token id {} is beyond the model's {} rows", where, i, rows);
    tokens[size_t(i)] = token, types[size_t(i)] = kNormal;
  }
  if (j.contains("added_tokens"))
    for (const auto& t : j["added_tokens"]) {
      const int64_t i = t.at("id").get<int64_t>();
      if (i >= rows) user_error("{}: token id {} is beyond the model's {} rows", where, i, rows);
      tokens[size_t(i)] = t.at("content").get<std::string>();
      types[size_t(i)] = t.value("special", false) ? kControl : kUserDefined;
    }
  for (int64_t i = 0; i < rows; i++)
    if (types[size_t(i)] == kUnused) tokens[size_t(i)] = fmt::format("[PAD{}]", i);
  std::vector<std::string> merges;
  for (const auto& m : j.at("model").at("merges"))
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  g.add("tokenizer.ggml.model", std::string("gpt2"));
  g.add("tokenizer.ggml.pre", std::string("gpt-2"));  // GPT-2's regex, as spectra's BPE uses
  g.add("tokenizer.ggml.tokens", tokens);
  g.add("tokenizer.ggml.token_type", types);
  g.add("tokenizer.ggml.merges", merges);
  auto eot = std::find(tokens.begin(), tokens.end(), "<|endoftext|>");
  if (eot != tokens.end()) {
    const uint32_t id = uint32_t(eot - tokens.begin());
    g.add("tokenizer.ggml.bos_token_id", id);
    g.add("tokenizer.ggml.eos_token_id", id);
  }
  g.add("tokenizer.ggml.add_bos_token", false);  // GPT-NeoX-style models start without one
  g.add("tokenizer.ggml.add_eos_token", false);
}

}  // namespace

void export_gguf(const LoadedModel& m, const std::string& model_path, const std::string& out,
                 const GgufOptions& o) {
  const ModelConfig& c = m.recipe.model;
  if (m.tokenizer_json.empty())
    user_error("{}: a byte-level model (no tokenizer.json); llama.cpp needs a BPE vocabulary",
               model_path);
  const bool tq = o.type != "f16";
  if (tq && !c.ternary())
    user_error("{}: a FloatLM; --type {} stores ternary weights (export FloatLMs as f16)",
               model_path, o.type);
  GgufWriter g;
  g.add("general.architecture", std::string("llama"));
  g.add("general.name", fmt::format("spectra {} {}", model_kind_name(c.kind), m.recipe.size));
  g.add("general.file_type", file_type(o.type));
  g.add("llama.context_length", uint32_t(c.context));
  g.add("llama.embedding_length", uint32_t(c.hidden));
  g.add("llama.block_count", uint32_t(c.layers));
  g.add("llama.feed_forward_length", uint32_t(c.ffn));
  g.add("llama.rope.dimension_count", uint32_t(c.head_dim()));
  g.add("llama.attention.head_count", uint32_t(c.heads));
  g.add("llama.attention.head_count_kv", uint32_t(c.heads));
  g.add("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  g.add("llama.rope.freq_base", c.rope_theta);
  g.add("llama.vocab_size", uint32_t(c.vocab_rows));
  add_tokenizer(g, m.tokenizer_json, c.vocab_rows, model_path + ":tokenizer.json");

  const GgmlType tq_type = o.type == "tq1_0" ? GgmlType::tq1_0 : GgmlType::tq2_0;
  for (auto& [name, p] : m.model->named_parameters()) {
    Tensor w = effective_weight(*p, p->master, c.ternary_eps, c.ternary_shards);  // γ·T
    const std::string gname = gguf_name(name);
    if (name.ends_with("q_proj.weight") || name.ends_with("k_proj.weight"))
      w = permute_rope_rows(w, c.heads);
    std::vector<int64_t> dims(w.shape().rbegin(), w.shape().rend());
    if (w.dim() == 1) {
      g.add_tensor(gname, GgmlType::f32, dims, as_bytes(w));
    } else if (tq && p->ternary) {
      std::vector<uint8_t> blocks;
      const std::string why = tq_blocks(w, tq_type, blocks);
      if (why.empty()) {
        g.add_tensor(gname, tq_type, dims, std::move(blocks));
      } else if (o.tq_fallback == "f16") {
        fmt::print(stderr, "warning: {}: {} kept in F16: {}\n", model_path, name, why);
        g.add_tensor(gname, GgmlType::f16, dims, f16_bytes(w));
      } else {
        user_error(
            "{}: {} cannot be stored as {}: {} (--tq-fallback f16 keeps such tensors in "
            "F16)",
            model_path, name, o.type, why);
      }
    } else {
      g.add_tensor(gname, GgmlType::f16, dims, f16_bytes(w));
    }
  }
  g.write(out);
}

}  // namespace spectra
