// The `spectra` subcommands. Each add_* registers its options on the app and sets the callback
// that runs it; errors propagate as exceptions to main(), which maps them to exit codes.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

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

}  // namespace spectra::tools
