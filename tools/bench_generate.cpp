// spectra bench --generate N: inference speed of a recipe's model with random weights. A prompt
// of --prompt-tokens random tokens is read into the key/value cache at once (prefill), then N
// tokens are decoded greedily one at a time; both are timed (medians of --repeats runs). A
// TriLM runs three ways: its latent f32 weights quantized as training does, and its packed
// 2-bit weights with exact (f32) and int8 activations (kernels/ternary_packed.h); each row
// prints the bytes of weights the model holds and whether its tokens equal the first row's.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "core/progress.h"
#include "core/rng.h"
#include "kernels/cpu_isa.h"
#include "layers/kv_cache.h"
#include "tools/bench.h"
#include "train/model_file.h"
#include "train/placement.h"
#include "train/recipe.h"

namespace spectra::tools {

namespace {

struct Run {
  double prompt_s = 0, decode_s = 0;
  std::vector<int32_t> tokens;
};

int32_t argmax_row(const Tensor& logits, int64_t row, int64_t vocab) {
  const Tensor r = logits.slice(row, row + 1).to(Device::cpu()).to(DType::f32);
  const float* v = r.data<float>();
  return int32_t(std::max_element(v, v + vocab) - v);
}

Run run_once(const LM& lm, const std::vector<int32_t>& prompt, int64_t tokens) {
  ag::NoGradGuard no_grad;
  const ModelConfig& c = lm.config();
  const int64_t p = int64_t(prompt.size());
  KVCache cache(c, 1, p + tokens, lm.compute_dtype(), lm.device());
  Run out;
  Stopwatch w;
  Tensor logits = lm.logits_cached(Tensor::from(prompt, {p}).to(lm.device()), {{0, p}}, cache);
  int32_t next = argmax_row(logits, p - 1, c.vocab_size);
  out.prompt_s = w.seconds();
  w.reset();
  for (int64_t n = 0; n < tokens; n++) {
    out.tokens.push_back(next);
    if (n + 1 == tokens) break;
    logits = lm.logits_cached(Tensor::from(std::vector<int32_t>{next}, {1}).to(lm.device()),
                              {{0, 1}}, cache);
    next = argmax_row(logits, 0, c.vocab_size);
  }
  out.decode_s = w.seconds();
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Σ bits of the packed ternary matrices / their weights (0 when nothing is packed).
double packed_bits_per_weight(const LM& lm) {
  double bytes = 0, weights = 0;
  for (int64_t i = 0; i < lm.blocks(); i++)
    for (auto& [name, linear] : lm.block(i).projections())
      if (const kernels::PackedTernary* p = linear->packed()) {
        bytes += double(p->nbytes());
        weights += double(p->rows * p->cols);
      }
  return weights > 0 ? 8 * bytes / weights : 0;
}

}  // namespace

void add_bench_generate_options(CLI::App* cmd, GenerateBenchArgs& a) {
  cmd->add_option("--generate", a.tokens,
                  "Measure inference instead: a prompt read at once, then N tokens decoded "
                  "greedily (random weights; TriLMs latent and packed)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prompt-tokens", a.prompt_tokens, "--generate: tokens of the prompt")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--repeats", a.repeats, "--generate: runs per row (medians are printed)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--packed-only", a.packed_only,
                "--generate: TriLMs run packed only (no latent f32 row: less memory and time)");
  cmd->add_option("--save-model", a.save_model,
                  "--generate: also write the random model as a model file (one recipe), e.g. "
                  "for `spectra export --format gguf` (bench/compare_llamacpp.py)");
}

void print_generate_header() {
  fmt::print("{:<26} {:>7} {:>7} {:>5} {:>9} {:>6} {:>12} {:>12} {:>5}\n", "recipe", "params",
             "weights", "acts", "weight MB", "bits/w", "prompt tok/s", "decode tok/s", "same");
}

void bench_generate(const std::string& path, const std::vector<std::string>& overrides,
                    const GenerateBenchArgs& a, bool json) {
  Recipe r = load_recipe(path, overrides);
  Placement p = resolve_placement(r);
  const ModelConfig& c = r.model;
  if (a.prompt_tokens + a.tokens > c.context)
    user_error("{}: --prompt-tokens {} + --generate {} exceed the context ({})", path,
               a.prompt_tokens, a.tokens, c.context);
  LM lm(c, LayerOptions{DType::f32, p.device}, p.compute_dtype);
  lm.initialize(r.train.seed);
  if (!a.save_model.empty()) save_model(a.save_model, lm, r);
  std::vector<int32_t> prompt(size_t(a.prompt_tokens));
  Rng rng{r.train.seed + 1, 0};
  for (int32_t& t : prompt) t = int32_t(rng.below(uint64_t(c.vocab_size)));

  struct Row {
    const char* weights;
    kernels::Activations acts;
  };
  std::vector<Row> rows;
  if (!c.ternary() || !a.packed_only) rows.push_back({"latent", kernels::Activations::exact});
  if (c.ternary() && !p.device.is_cuda())
    for (kernels::Activations m : {kernels::Activations::exact, kernels::Activations::int8})
      rows.push_back({"packed", m});
  std::vector<int32_t> first;
  for (const Row& row : rows) {
    const bool packed = std::string(row.weights) == "packed";
    if (packed) lm.pack_ternary(row.acts);
    std::vector<double> prompt_s, decode_s;
    std::vector<int32_t> tokens;
    for (int64_t k = 0; k < a.repeats; k++) {
      Run run = run_once(lm, prompt, a.tokens);
      prompt_s.push_back(run.prompt_s);
      decode_s.push_back(run.decode_s);
      tokens = std::move(run.tokens);
    }
    if (first.empty()) first = tokens;
    const double prompt_tok_s = double(a.prompt_tokens) / median(prompt_s);
    const double decode_tok_s = double(std::max<int64_t>(1, a.tokens - 1)) / median(decode_s);
    const double mb = double(lm.weight_bytes()) / 1e6, bits = packed_bits_per_weight(lm);
    const bool same = tokens == first;
    fmt::print("{:<26} {:>7} {:>7} {:>5} {:>9.1f} {:>6} {:>12.1f} {:>12.2f} {:>5}\n", path,
               format_count(double(c.parameter_count())), row.weights,
               packed ? kernels::activations_name(row.acts) : "f32", mb,
               packed ? fmt::format("{:.3f}", bits) : "32", prompt_tok_s, decode_tok_s,
               same ? "yes" : "no");
    if (json)
      fmt::print("json: {}\n", nlohmann::json{{"recipe", path},
                                              {"kind", c.ternary() ? "trilm" : "floatlm"},
                                              {"device", p.device.str()},
                                              {"threads", omp_get_max_threads()},
                                              {"isa", kernels::cpu_isa_name(kernels::cpu_isa())},
                                              {"weights", row.weights},
                                              {"activations", kernels::activations_name(row.acts)},
                                              {"weight_bytes", lm.weight_bytes()},
                                              {"ternary_bits_per_weight", bits},
                                              {"prompt_tokens", a.prompt_tokens},
                                              {"new_tokens", a.tokens},
                                              {"repeats", a.repeats},
                                              {"prompt_tokens_per_s", prompt_tok_s},
                                              {"decode_tokens_per_s", decode_tok_s},
                                              {"same_tokens_as_first_row", same}}
                                   .dump());
    std::fflush(stdout);
  }
}

}  // namespace spectra::tools
