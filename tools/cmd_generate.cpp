// spectra generate MODEL --prompt TEXT: sample a continuation from a trained model file.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/cuda_runtime.h"
#include "tools/commands.h"
#include "train/generate.h"
#include "train/model_file.h"

namespace spectra::tools {

namespace {
struct GenerateArgs {
  std::string model;
  std::string prompt = "\n";
  SampleOptions sample;
  std::string device = "cpu";
  std::string logprobs;  // JSONL of {"id", "logprob"} per generated token
};
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
  cmd->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--logprobs", a->logprobs,
                  "Write each generated token's id and log-probability to this JSONL file");
  cmd->callback([a] {
    Device d = Device::parse(a->device);
    LoadedModel m = load_model(a->model, d, DType::f32);
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
