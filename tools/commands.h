// The `spectra` subcommands. Each add_* registers its options on the app and sets the callback
// that runs it; errors propagate as exceptions to main(), which maps them to exit codes.
#pragma once
#include <CLI/CLI.hpp>

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

}  // namespace spectra::tools
