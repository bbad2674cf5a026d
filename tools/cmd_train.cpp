// spectra train RECIPE [--set key=value ...] [--dry-run]
#include <fmt/format.h>

#include <filesystem>

#include "core/log.h"
#include "dist/topology.h"
#include "dist/world.h"
#include "tools/commands.h"
#include "train/plan.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace spectra::tools {

namespace {
struct TrainArgs {
  std::string recipe;
  std::vector<std::string> overrides;
  bool dry_run = false;
  std::string resume;
  int64_t stop_at = 0;
};

// Every file the recipe names must exist before any work starts.
void check_files(const Recipe& r) {
  auto missing = [&](const char* key, const std::string& file) {
    user_error("{}: key '{}': '{}' does not exist; fix the path or prepare the file first",
               r.where(key), key, file);
  };
  if (!r.data.text.empty() && !std::filesystem::exists(r.data.text))
    missing("data.text", r.data.text);
  if (!r.data.tokenizer.empty() && !std::filesystem::exists(r.data.tokenizer))
    missing("data.tokenizer", r.data.tokenizer);
  for (const auto& d : r.data.datasets)
    if (!std::filesystem::exists(d)) missing("data.datasets", d);
}

void run(const TrainArgs& a) {
  // Every rank validates the recipe, its files and the layout; they fail together, one line.
  Recipe r;
  Placement p;
  std::string error;
  try {
    r = load_recipe(a.recipe, a.overrides);
    check_files(r);
    p = resolve_placement(r);
    dist::check_layout(r.parallel.tp, r.parallel.dp, dist::world_size(), r.path);
    if (r.parallel.tp > 1 && !a.dry_run)
      user_error(
          "{}: parallel.tp {}: tensor parallelism is not implemented yet; train with "
          "--set parallel.tp=1 (data parallelism: parallel.dp)",
          r.path, r.parallel.tp);
  } catch (const UserError& e) {
    error = e.what();
  }
  dist::fail_together(error);
  if (a.dry_run) {
    fmt::print("{}", describe_model(r));
    fmt::print("would train on {} in {} for {} steps; nothing was trained (--dry-run)\n",
               p.device.str(), r.train.precision, r.train.steps);
    return;
  }
  train(r, TrainOptions{a.resume, a.stop_at});
}
}  // namespace

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a YAML recipe");
  cmd->add_option("recipe", args->recipe, "Recipe file (recipes/tiny/trilm.yaml, ...)")->required();
  cmd->add_option("--set", args->overrides, "Override a recipe key: --set train.steps=100")
      ->type_name("KEY=VALUE");
  cmd->add_flag("--dry-run", args->dry_run,
                "Validate the recipe and every file it names, print the plan, train nothing");
  cmd->add_option("--resume", args->resume,
                  "Resume: 'auto' (newest valid checkpoint in checkpoint.dir) or a checkpoint file")
      ->type_name("auto|PATH");
  cmd->add_option("--stop-at", args->stop_at,
                  "Checkpoint and exit after this step (for time-limited allocations)")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run(*args); });
}

}  // namespace spectra::tools
