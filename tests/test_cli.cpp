// The `spectra` binary as users run it: exit codes and the one-line `error:` contract.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/run_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

std::string write_file(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / "spectra_cli_test";
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

CommandResult run(const std::string& args) {
  return run_command(std::string(SPECTRA_BIN) + " " + args);
}

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

const std::string kTiny = std::string(SPECTRA_SOURCE_DIR) + "/recipes/tiny/trilm.yaml";

}  // namespace

TEST(Cli, HelpEverywhere) {
  for (std::string sub : {"", "train ", "inspect ", "generate "}) {
    CommandResult r = run(sub + "--help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << sub;
  }
}

TEST(Cli, BadFlagIsOneErrorLine) {
  CommandResult r = run("train --no-such-flag " + kTiny);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("error:", 0), 0u) << r.output;
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
}

TEST(Cli, RecipeErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml, key;
    std::string flags = " --dry-run";  // a dry run lists a missing data file under its plan
  };
  std::string base =
      "model: {kind: trilm, vocab_size: 256, hidden: 64, heads: 4, ffn: 128, layers: 1, context: "
      "64}\n";
  std::vector<Case> cases = {
      {base + "train: {stepz: 3}\n", "stepz"},
      {base + "train: {steps: three}\n", "steps"},
      {"model: {kind: trilm, vocab_size: 256, hidden: 64, heads: 5, ffn: 128, layers: 1, context: "
       "64}\n",
       "heads"},
      {base + "data: {text: /no/such/file.txt}\n", "data.text", ""},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    std::string path = write_file("bad" + std::to_string(i) + ".yaml", cases[i].yaml);
    CommandResult r = run("train " + path + cases[i].flags);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(r.output.rfind("error:", 0), 0u) << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(path + ":"), std::string::npos) << "file:line expected: " << r.output;
    EXPECT_NE(r.output.find(cases[i].key), std::string::npos) << r.output;
  }
}

TEST(Cli, MissingRecipeFile) {
  CommandResult r = run("train /no/such/recipe.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("error:", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("/no/such/recipe.yaml"), std::string::npos);
}

TEST(Cli, DryRunTrainsNothing) {
  CommandResult r = run("train " + kTiny + " --dry-run");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("nothing was trained"), std::string::npos) << r.output;
}

TEST(Cli, InspectPrintsTheParameterCount) {
  CommandResult r = run("inspect " + std::string(SPECTRA_SOURCE_DIR) + "/recipes/trilm/99m.yaml");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("99.74M"), std::string::npos) << r.output;
}

TEST(Cli, TrainThenGenerate) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "spectra_cli_test";
  std::string model = (dir / "m.h5").string();
  CommandResult t =
      run("train " + kTiny +
          " --set train.steps=2 --set eval.batches=1 --set eval.sample_tokens=5 --set train.out=" +
          model);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("step 2/2"), std::string::npos) << t.output;
  EXPECT_NE(t.output.find("ETA"), std::string::npos) << t.output;
  CommandResult g = run("generate " + model + " --prompt 'In the' -n 10 --seed 3");
  EXPECT_EQ(g.code, 0) << g.output;
  EXPECT_EQ(g.output.rfind("In the", 0), 0u) << g.output;
  CommandResult bad = run("generate /no/such/model.h5");
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.output.rfind("error:", 0), 0u) << bad.output;
  // export: a missing model, an unknown dtype, an output that cannot be created: one line each.
  for (std::string args : {"export /no/such/model.h5 -o " + (dir / "hf").string(),
                           "export " + model + " -o " + (dir / "hf").string() + " --dtype f8",
                           "export " + model + " -o /proc/spectra-no-such-dir"}) {
    CommandResult e = run(args);
    EXPECT_EQ(e.code, 2) << args << "\n" << e.output;
    EXPECT_EQ(e.output.rfind("error:", 0), 0u) << e.output;
    EXPECT_EQ(std::count(e.output.begin(), e.output.end(), '\n'), 1) << e.output;
  }
}
