// spectra: pretrain TriLM and FloatLM models. `spectra --help` lists the subcommands.
// Exit codes: 0 success, 2 user error (bad flags, recipe or file: one `error:` line), 1 internal
// failure.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <string>

#include "core/error.h"
#include "dist/topology.h"
#include "dist/watchdog.h"
#include "dist/world.h"
#include "tools/commands.h"

// Which rank speaks, in a job of several, and in which training step.
static std::string rank_prefix() {
  using namespace spectra;
  if (dist::world_size() == 1) return "";
  const int64_t step = dist::current_step();
  return step < 0 ? fmt::format("rank {}: ", dist::world_rank())
                  : fmt::format("rank {}: step {}: ", dist::world_rank(), step + 1);
}

int main(int argc, char** argv) {
  using namespace spectra;
  CLI::App app{"spectra " SPECTRA_VERSION
               ": pretrain ternary (TriLM) and float (FloatLM) language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SPECTRA_VERSION);
  tools::add_train(app);
  tools::add_inspect(app);
  tools::add_generate(app);
  tools::add_eval(app);
  tools::add_bench(app);
  tools::add_tokenizer(app);
  tools::add_prepare(app);
  tools::add_export(app);
  tools::add_quantize(app);
  tools::add_convert(app);
  tools::add_plot(app);
  int code = 0;
  try {
    dist::init(&argc, &argv);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    code = app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    code = app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    code = app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "error: {} (see --help)\n", e.what());
    code = 2;
  } catch (const dist::AgreedError& e) {  // every rank failed validation together
    if (e.report) fmt::print(stderr, "error: {}\n", e.message);
    dist::finalize();
    return 2;
  } catch (const UserError& e) {
    fmt::print(stderr, "error: {}{}\n", rank_prefix(), e.what());
    code = 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}internal failure: {}\n", rank_prefix(), e.what());
    code = 1;
  }
  // A rank failing alone takes the job down rather than leaving the others waiting.
  if (code != 0 && dist::world_size() > 1) dist::abort_job(code);
  dist::finalize();
  return code;
}
