// spectra inspect RECIPE|MODEL: parameter count, FLOPs per token and a memory estimate for a
// recipe (.yaml) or a trained model file (.h5, whose recipe is stored inside).
#include <fmt/format.h>

#include "tools/commands.h"
#include "train/checkpoint.h"
#include "train/model_file.h"
#include "train/plan.h"
#include "train/recipe.h"

namespace spectra::tools {

void add_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Describe a recipe, a model file or a checkpoint (verifying it)");
  cmd->add_option("file", *path, "A recipe (.yaml) or a model file (.h5)")->required();
  cmd->add_option("--set", *overrides, "Override a recipe key")->type_name("KEY=VALUE");
  cmd->callback([path, overrides] {
    bool yaml = path->ends_with(".yaml") || path->ends_with(".yml");
    if (yaml) {
      fmt::print("{}", describe_model(load_recipe(*path, *overrides)));
    } else if (is_checkpoint_file(*path)) {
      fmt::print("{}", describe_checkpoint(*path));
    } else {
      LoadedModel m = load_model(*path, Device::cpu(), DType::f32);
      fmt::print("model file {}\n{}", *path, describe_model(m.recipe));
    }
  });
}

}  // namespace spectra::tools
