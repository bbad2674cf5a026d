// spectra train RECIPE [--set key=value ...] [--resume auto|PATH] [--stop-at STEP]
// spectra train RECIPE --dry-run [--world N] [--gpu-memory GiB] [--tokens-per-second-per-gpu X]
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "core/log.h"
#include "data/loader.h"
#include "dist/topology.h"
#include "dist/world.h"
#include "tools/commands.h"
#include "train/batch_source.h"
#include "train/placement.h"
#include "train/plan.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace spectra::tools {

namespace {
struct TrainArgs {
  std::string recipe;
  std::vector<std::string> overrides;
  bool dry_run = false;
  PlanOptions plan;  // --world, --gpu-memory, --tokens-per-second-per-gpu (dry run)
  std::string resume;
  int64_t stop_at = 0;
};

// Every file the recipe names must exist and hold usable data before any work starts. With
// `missing` (a dry run), files that do not exist are listed there instead of failing, and no
// data is opened if any is missing.
std::unique_ptr<BatchSource> check_data(const Recipe& r, std::vector<std::string>* missing) {
  std::vector<std::string> absent;
  auto note = [&](const char* key, const std::string& problem, const char* fix) {
    absent.push_back(fmt::format("{}: key '{}': {}; {}", r.where(key), key, problem, fix));
  };
  if (!r.data.text.empty() && !std::filesystem::exists(r.data.text))
    note("data.text", fmt::format("'{}' does not exist", r.data.text), "fix the path");
  if (!r.data.tokenizer.empty() && !std::filesystem::exists(r.data.tokenizer))
    note("data.tokenizer", fmt::format("'{}' does not exist", r.data.tokenizer),
         "fix the path or train one (spectra tokenizer train)");
  for (const auto& d : r.data.datasets) {
    try {
      source_files(d);  // a file, a shard stem or a directory
    } catch (const UserError& e) {
      note("data.datasets", e.what(), "run `spectra prepare` or fix the path");
    }
  }
  if (!absent.empty() && !missing) user_error("{}", absent.front());
  if (!absent.empty()) {
    *missing = std::move(absent);
    return nullptr;
  }
  return make_batch_source(r, 0, 1);  // opens every shard: format, tokenizer, vocabulary, size
}

void run(const TrainArgs& a) {
  // Every rank validates the recipe, its files and the layout; they fail together, one line.
  Recipe r;
  Placement p;
  TrainingPlan plan;
  std::string error, data_line;
  std::vector<std::string> missing;
  int64_t data_tokens = 0;
  try {
    r = load_recipe(a.recipe, a.overrides);
    std::unique_ptr<BatchSource> data = check_data(r, a.dry_run ? &missing : nullptr);
    if (data) data_line = data->describe(), data_tokens = data->train_tokens();
    for (const std::string& m : missing)  // a line each, aligned under the plan's "data"
      data_line += (data_line.empty() ? "" : "\n" + std::string(13, ' ')) + "MISSING: " + m;
    if (a.dry_run) {
      // A dry run plans a world of --world GPUs from any machine (a laptop planning a cluster
      // run), so it checks that layout and its memory, not this machine's GPU or job size.
      PlanOptions o = a.plan;
      if (o.world == 0 && dist::world_size() > 1) o.world = dist::world_size();
      plan = plan_training(r, o);
      require_fit(plan, r);
    } else {
      p = resolve_placement(r);
      dist::check_layout(r.parallel.tp, r.parallel.dp, dist::world_size(), r.path);
    }
  } catch (const UserError& e) {
    error = e.what();
  }
  dist::fail_together(error);
  if (a.dry_run) {
    if (dist::world_rank() == 0)
      fmt::print("{}nothing was trained (--dry-run)\n",
                 describe_plan(plan, r, data_line, data_tokens));
    std::fflush(stdout);   // the plan before the error line, also when both go to one pipe
    if (!missing.empty())  // the plan is printed, and scripts still see the failure
      user_error("--dry-run: {} data file{} missing: {}", missing.size(),
                 missing.size() == 1 ? " is" : "s are", fmt::join(missing, "; "));
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
  cmd->add_option("--world", args->plan.world,
                  "Dry run: GPUs to plan for (default: the job's world size; a single process "
                  "plans the smallest world the recipe runs on, parallel.tp x parallel.dp)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--gpu-memory", args->plan.gpu_memory_gib,
                  "Dry run: memory per GPU in GiB the plan must fit")
      ->default_val(80)
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tokens-per-second-per-gpu", args->plan.tokens_per_second_per_gpu,
                  "Dry run: measured throughput (spectra bench) for the time estimate")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--resume", args->resume,
                  "Resume: 'auto' (newest valid checkpoint in checkpoint.dir) or a checkpoint file")
      ->type_name("auto|PATH");
  cmd->add_option("--stop-at", args->stop_at,
                  "Checkpoint and exit after this step (for time-limited allocations)")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run(*args); });
}

}  // namespace spectra::tools
