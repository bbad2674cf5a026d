// The `spectra` subcommands. Each add_* registers its options on the app and sets the callback
// that runs it; errors propagate as exceptions to main(), which maps them to exit codes.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace spectra {
class LM;
}

namespace spectra::tools {

void add_train(CLI::App& app);
void add_inspect(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_bench(CLI::App& app);
void add_tokenizer(CLI::App& app);
void add_prepare(CLI::App& app);
void add_plot(CLI::App& app);
void add_export(CLI::App& app);
void add_quantize(CLI::App& app);
void add_convert(CLI::App& app);

// --device and --precision, with the same words and help in every command (train/placement.h).
inline void add_device_option(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device, "auto (a GPU when one is usable), cpu, cuda or cuda:N")
      ->capture_default_str();
}
inline void add_placement_options(CLI::App* cmd, std::string& device, std::string& precision) {
  add_device_option(cmd, device);
  cmd->add_option("--precision", precision, "auto (bf16 on a GPU, f32 on the CPU), f32, bf16, fp16")
      ->capture_default_str();
}

// --weights and --activations: how `generate` and `eval` run a TriLM's projections
// (kernels/ternary_packed.h). `activations` starts as the command's default.
struct WeightArgs {
  std::string weights = "auto";  // auto: packed for a TriLM on the CPU, else latent
  std::string activations;       // exact or int8
};
inline void add_weight_options(CLI::App* cmd, WeightArgs& a) {
  cmd->add_option("--weights", a.weights,
                  "TriLM projections: packed (2-bit codes, the default on the CPU) or latent "
                  "(the f32 training weights, quantized as training does)")
      ->check(CLI::IsMember({"auto", "packed", "latent"}))
      ->capture_default_str();
  cmd->add_option("--activations", a.activations,
                  "With packed weights: exact (f32 activations: the latent path's results within "
                  "float rounding) or int8 (per-row 8-bit activations and LM head: faster)")
      ->check(CLI::IsMember({"exact", "int8"}))
      ->capture_default_str();
}
// Packs the TriLM's projections when a.weights asks for it (auto: on the CPU). UserError naming
// the model file for packed weights on a FloatLM or on a GPU.
void apply_weight_options(LM& model, const WeightArgs& a, const std::string& model_path);

}  // namespace spectra::tools
