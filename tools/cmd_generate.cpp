// spectra generate MODEL --prompt TEXT: sample a continuation from a trained model file (with a
// key/value cache; --no-cache reruns the window per token). --prompts FILE continues every
// prompt of a file (one per line, or JSONL {"prompt": ...}) in batches, one JSON line each. A
// TriLM runs on its packed 2-bit weights with int8 activations by default (--weights,
// --activations).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/generate.h"
#include "tools/commands.h"
#include "train/model_file.h"
#include "train/placement.h"

namespace spectra::tools {

namespace {
struct GenerateArgs {
  std::string model;
  std::string prompt = "\n";
  SampleOptions sample;
  std::string device = "auto", precision = "auto";
  std::string logprobs;  // JSONL of {"id", "logprob"} per generated token
  std::string prompts;   // a file of prompts
  WeightArgs weights{"auto", "int8"};
};

// One prompt per line; a .jsonl file holds {"prompt": TEXT} objects.
std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) user_error("{}: cannot open the prompts file (--prompts)", path);
  const bool jsonl = path.ends_with(".jsonl");
  std::vector<std::string> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); n++) {
    if (!jsonl) {
      out.push_back(line);
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      user_error("{}:{}: expected a JSON object with a string \"prompt\"", path, n);
    out.push_back(j["prompt"].get<std::string>());
  }
  if (out.empty()) user_error("{}: no prompts in the file", path);
  return out;
}
}  // namespace

void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Sample text from a trained model file");
  cmd->add_option("model", a->model, "Model file written by `spectra train` (train.out)")
      ->required();
  cmd->add_option("--prompt", a->prompt, "Text to continue");
  cmd->add_option("-n,--tokens", a->sample.tokens, "Tokens to generate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", a->sample.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", a->sample.top_k, "Sample among the k likeliest tokens (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->sample.seed, "Random seed")->capture_default_str();
  cmd->add_option("--prompts", a->prompts,
                  "Continue every prompt of this file (a line each, or JSONL {\"prompt\": ...}); "
                  "prints one JSON line {\"prompt\", \"completion\"} per prompt")
      ->excludes("--prompt");
  cmd->add_option("--batch", a->sample.batch, "Prompts generated together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("!--no-cache", a->sample.cache,
                "Rerun the whole context for every token instead of keeping a key/value cache");
  add_placement_options(cmd, a->device, a->precision);
  add_weight_options(cmd, a->weights);
  cmd->add_option("--logprobs", a->logprobs,
                  "Write each generated token's id and log-probability to this JSONL file");
  cmd->callback([a] {
    const Device d = resolve_device(a->device, "--device");
    LoadedModel m = load_model(a->model, d, resolve_precision(a->precision, d, "--precision"));
    apply_weight_options(*m.model, a->weights, a->model);
    if (!m.tokenizer && m.recipe.data.text.empty())
      user_error(
          "{}: the model was trained on token datasets without data.tokenizer, so it "
          "holds no tokenizer.json to decode with",
          a->model);
    std::ofstream scores;
    if (!a->logprobs.empty()) {
      scores.open(a->logprobs);
      if (!scores) user_error("{}: cannot create (--logprobs)", a->logprobs);
    }
    if (!a->prompts.empty()) {
      const std::vector<std::string> prompts = read_prompts(a->prompts);
      std::vector<std::string> outs = generate(
          *m.model, m.tokenizer.get(), prompts, a->sample, [&](size_t i, const GeneratedToken& t) {
            if (scores.is_open())
              scores << nlohmann::json{{"prompt", i}, {"id", t.id}, {"logprob", t.logprob}}.dump()
                     << "\n";
          });
      for (size_t i = 0; i < prompts.size(); i++)
        fmt::print("{}\n", nlohmann::json{{"prompt", prompts[i]}, {"completion", outs[i]}}.dump(
                               -1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    fmt::print("{}", a->prompt);
    generate(*m.model, m.tokenizer.get(), a->prompt, a->sample, [&](const GeneratedToken& t) {
      fmt::print("{}", t.bytes);
      std::fflush(stdout);
      if (scores.is_open())
        scores << nlohmann::json{{"id", t.id}, {"logprob", t.logprob}}.dump() << "\n";
    });
    fmt::print("\n");
  });
}

}  // namespace spectra::tools
