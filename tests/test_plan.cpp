// The training plan (`spectra train --dry-run`) and `spectra plot`: the suite's schedule values at
// 0, 25, 50, 66.7 and 100% against SPECTRA.md, the memory plans the docs quote, layouts that
// cannot run, and the PNGs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/error.h"
#include "tests/run_command.h"
#include "train/plan.h"
#include "train/recipe.h"

using namespace spectra;
namespace fs = std::filesystem;

namespace {

const std::string kRecipes = std::string(SPECTRA_SOURCE_DIR) + "/recipes/";
const std::string kTiny = kRecipes + "tiny/trilm.yaml";

CommandResult run(const std::string& args) {
  return run_command(std::string(SPECTRA_BIN) + " " + args);
}
int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

fs::path test_dir() {
  fs::path d = fs::temp_directory_path() / ("spectra_plan_test-" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

// SPECTRA.md, Optimization: peak LR per size (TriLM before/after the 50% drop; FloatLM one
// cosine); every stage decays by cosine to 10% of its peak; 1000 warmup steps; weight decay 0.1,
// for TriLM 0 from 2/3 of training.
struct Size {
  const char* name;
  double tri[2], flt;
};
const Size kSizes[] = {
    {"99m", {2.4e-3, 1.5e-3}, 6e-4},    {"190m", {2.4e-3, 1.5e-3}, 6e-4},
    {"390m", {1.8e-3, 1.2e-3}, 3e-4},   {"560m", {1.6e-3, 1.1e-3}, 3e-4},
    {"830m", {1.5e-3, 1.0e-3}, 2.5e-4}, {"1.1b", {1.3e-3, 9e-4}, 2e-4},
    {"1.5b", {1.2e-3, 8e-4}, 2e-4},     {"2.4b", {1.2e-3, 8e-4}, 1.6e-4},
    {"3.9b", {1.2e-3, 8e-4}, 1.2e-4},
};
// A cosine stage from `peak` to 10% of it, at progress p through the stage.
double cosine(double peak, double p) {
  return peak * (0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * p)));
}

}  // namespace

TEST(Plan, SuiteSchedulesMatchSpectra) {
  const int64_t steps = 286102;
  // 1-based steps: the first step starting at or after each fraction (71525.5 -> index 71526).
  const int64_t at[] = {1, 71527, 143052, 190736, 286102};
  for (const Size& s : kSizes) {
    for (bool tri : {true, false}) {
      SCOPED_TRACE(std::string(tri ? "trilm/" : "floatlm/") + s.name);
      Recipe r = load_recipe(kRecipes + (tri ? "trilm/" : "floatlm/") + s.name + ".yaml");
      TrainingPlan p = plan_training(r);
      EXPECT_EQ(p.world, r.parallel.tp);  // a single process plans the smallest world
      EXPECT_EQ(p.dp, 1);
      EXPECT_EQ(p.accumulation, 512 / r.train.micro_batch);
      EXPECT_EQ(p.steps, steps);
      EXPECT_EQ(p.tokens_per_step, 1048576);
      EXPECT_EQ(p.total_tokens, steps * 1048576);
      EXPECT_EQ(p.parameters, r.model.parameter_count_unpadded());
      EXPECT_TRUE(p.fits());
      ASSERT_EQ(p.schedule.size(), 5u);
      for (int i = 0; i < 5; i++) EXPECT_EQ(p.schedule[i].step, at[i]) << i;
      double want[5];
      if (tri) {
        want[0] = s.tri[0] / 1000;            // warmup's first step
        want[1] = cosine(s.tri[0], 0.5);      // halfway through the first half
        want[2] = s.tri[1];                   // the reduced peak, in force at 50%
        want[3] = cosine(s.tri[1], 1.0 / 3);  // a third into the second half
        want[4] = 0.1 * s.tri[1];
      } else {
        want[0] = s.flt / 1000;
        want[1] = cosine(s.flt, 0.25);
        want[2] = cosine(s.flt, 0.5);
        want[3] = cosine(s.flt, 2.0 / 3);
        want[4] = 0.1 * s.flt;
      }
      for (int i = 0; i < 5; i++) {
        // Within a step's worth of the exact fraction (1/286102 of the stage's progress).
        EXPECT_NEAR(p.schedule[i].lr, want[i], 1e-4 * want[i]) << p.schedule[i].fraction;
        double wd = tri && i >= 3 ? 0.0 : 0.1;  // off from 2/3 for TriLM
        EXPECT_EQ(p.schedule[i].weight_decay, wd) << p.schedule[i].fraction;
      }
      if (tri) EXPECT_DOUBLE_EQ(p.schedule[2].lr, s.tri[1]);
    }
  }
}

TEST(Plan, FractionsLandOnOrAfterTheStageStart) {
  // 200 steps: 2/3 is 133.3, and step index 133 (fraction 0.665) is still before the stage.
  Recipe r =
      load_recipe(kRecipes + "trilm/1.1b.yaml", {"train.steps=200", "schedule.warmup_steps=10"});
  TrainingPlan p = plan_training(r);
  EXPECT_EQ(p.schedule[3].step, 135);  // index 134
  EXPECT_EQ(p.schedule[3].weight_decay, 0.0);
  EXPECT_EQ(p.schedule[2].step, 101);  // index 100 = 50%
  EXPECT_DOUBLE_EQ(p.schedule[2].lr, 9e-4);
  EXPECT_EQ(p.schedule[4].step, 200);
}

TEST(Plan, TriLM39BAtTp6) {
  Recipe r = load_recipe(kRecipes + "trilm/3.9b.yaml");
  TrainingPlan p = plan_training(r, {.world = 48, .tokens_per_second_per_gpu = 3000});
  EXPECT_EQ(p.tp, 6);
  EXPECT_EQ(p.dp, 8);
  EXPECT_EQ(p.accumulation, 512 / (8 * 8));
  MemoryPlan m = plan_memory(r, 8);
  EXPECT_EQ(p.memory.rank_params, m.rank_params);
  EXPECT_DOUBLE_EQ(p.memory.total(), m.total());
  EXPECT_DOUBLE_EQ(p.memory.optimizer, 8.0 * double(m.rank_params) / 8);  // ZeRO-1 over dp 8
  EXPECT_TRUE(p.fits());
  EXPECT_NEAR(p.seconds, double(p.total_tokens) / (3000.0 * 48), 1.0);
  std::string text = describe_plan(p, r);
  std::cout << text;
  for (const char* want : {"48 GPUs = tp 6 x dp 8", "micro-batch 8 x dp 8 x 8 accumulation",
                           "286,102 steps", "66.7%", "memory/GPU", "activations", "fits,",
                           "3,000 tokens/s per GPU x 48 GPUs = 144,000 tokens/s"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

// ZeRO-3 of TriLM 3.9B at tp 1 x dp 8: no rank holds the whole latent model or its bf16 copy, only
// the latent shard, the embedding, head and norms, two buckets' projections and every projection's
// 2-bit codes (rows of 3072 and 9216 columns, no padding: exactly 2 bits a weight), so the weights,
// gradients and AdamW state take at most half of ZeRO-2's (the activations are the same).
TEST(Plan, ZeroThreeHalvesTheTriLMState) {
  auto plan = [](int zero) {
    return plan_memory(load_recipe(kRecipes + "trilm/3.9b.yaml",
                                   {"parallel.tp=1", "parallel.zero=" + std::to_string(zero)}),
                       8);
  };
  const MemoryPlan z2 = plan(2), z3 = plan(3);
  const Recipe r = load_recipe(kRecipes + "trilm/3.9b.yaml", {"parallel.tp=1"});
  const double d = r.model.hidden, f = r.model.ffn, L = r.model.layers;
  const double projections = L * (4 * d * d + 3 * d * f);
  EXPECT_DOUBLE_EQ(z3.codes, projections / 4);
  EXPECT_EQ(z2.codes, 0);
  EXPECT_DOUBLE_EQ(z3.activations, z2.activations);
  EXPECT_DOUBLE_EQ(z3.grads, z2.grads);
  EXPECT_DOUBLE_EQ(z3.optimizer, z2.optimizer);
  const double state2 = z2.total() - z2.activations, state3 = z3.total() - z3.activations;
  EXPECT_LE(state3, 0.5 * state2) << state3 / state2;
  // A FloatLM's replicated weights under ZeRO-3 are its bf16 compute copy alone (the norm gains
  // in f32), beside its latent shard: no replicated f32 model.
  const Recipe fr = load_recipe(kRecipes + "floatlm/3.9b.yaml", {"parallel.tp=1"});
  const MemoryPlan f3 = plan_memory(
      load_recipe(kRecipes + "floatlm/3.9b.yaml", {"parallel.tp=1", "parallel.zero=3"}), 8);
  const double norms = double((2 * fr.model.layers + 1) * fr.model.hidden);
  EXPECT_DOUBLE_EQ(f3.compute, 2 * (double(f3.rank_params) - norms));
  EXPECT_DOUBLE_EQ(f3.master, f3.optimizer / 2 + 4 * norms);  // 4 bytes of the 8 AdamW keeps
  std::printf(
      "TriLM 3.9B, tp 1 x dp 8: weights, gradients and AdamW state %.2f GiB under ZeRO-3, "
      "%.2f GiB under ZeRO-2 (%.3f)\n",
      state3 / 1073741824.0, state2 / 1073741824.0, state3 / state2);
}

// Full recomputation keeps each block's input (d per token) and one block's activations.
TEST(Plan, RecomputationKeepsBlockInputsOnly) {
  Recipe r = load_recipe(kRecipes + "floatlm/3.9b.yaml", {"parallel.tp=1"});
  Recipe full =
      load_recipe(kRecipes + "floatlm/3.9b.yaml", {"parallel.tp=1", "train.recompute=full"});
  const ModelConfig& m = r.model;
  const double c = 2, tokens = double(r.train.micro_batch * r.train.seq_len);
  const double block = 4.0 * m.hidden + 4.0 * m.hidden + 3.0 * m.ffn;
  const double rest = c * tokens * (2.0 * m.hidden + 2.0 * m.vocab_rows);
  EXPECT_DOUBLE_EQ(plan_memory(r).activations, c * tokens * m.layers * block + rest);
  EXPECT_DOUBLE_EQ(plan_memory(full).activations,
                   c * tokens * (m.layers * m.hidden + block) + rest);
  EXPECT_EQ(plan_memory(full).master, plan_memory(r).master);
}

TEST(Plan, TriLM11BAtTp1) {
  Recipe r = load_recipe(kRecipes + "trilm/1.1b.yaml", {"parallel.tp=1"});
  TrainingPlan p = plan_training(r, {.world = 8});
  EXPECT_EQ(p.dp, 8);
  EXPECT_EQ(p.accumulation, 8);
  EXPECT_EQ(p.memory.rank_params, r.model.parameter_count());  // tp 1: the whole model
  EXPECT_DOUBLE_EQ(p.memory.total(), plan_memory(r, 8).total());
  EXPECT_TRUE(p.fits());
  std::string text = describe_plan(p, r);
  std::cout << text;
  EXPECT_NE(text.find("8 GPUs = tp 1 x dp 8"), std::string::npos) << text;
  EXPECT_NE(text.find("spectra bench"), std::string::npos) << text;  // no tokens/s given
}

TEST(Plan, ImpossibleLayoutsAreUserErrors) {
  Recipe r = load_recipe(kRecipes + "trilm/3.9b.yaml");
  auto message = [&](PlanOptions o) {
    try {
      require_fit(plan_training(r, o), r);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // 18 GPUs: dp 3, and 8 x 3 does not divide 512.
  std::string batch = message({.world = 18});
  EXPECT_NE(batch.find("train.global_batch 512"), std::string::npos) << batch;
  EXPECT_NE(batch.find("train.micro_batch 8 x dp 3"), std::string::npos) << batch;
  EXPECT_NE(message({.world = 7}).find("does not divide the world size 7"), std::string::npos);
  // 16 GiB: the activations of 8 sequences do not fit; the suggested micro-batch does.
  std::string memory = message({.world = 48, .gpu_memory_gib = 16});
  EXPECT_NE(memory.find("--gpu-memory is 16 GiB"), std::string::npos) << memory;
  size_t at = memory.find("train.micro_batch=");
  ASSERT_NE(at, std::string::npos) << memory;
  int64_t b = std::stoll(memory.substr(at + 18));
  Recipe smaller =
      load_recipe(kRecipes + "trilm/3.9b.yaml", {"train.micro_batch=" + std::to_string(b)});
  EXPECT_TRUE(plan_training(smaller, {.world = 48, .gpu_memory_gib = 16}).fits()) << memory;
  // 4 GiB: not even the weights and AdamW state fit: only a larger tp helps.
  std::string none = message({.world = 48, .gpu_memory_gib = 4});
  EXPECT_NE(none.find("raise parallel.tp"), std::string::npos) << none;
  EXPECT_EQ(none.find("train.micro_batch="), std::string::npos) << none;
}

TEST(PlanCli, DryRunPrintsThePlan) {
  CommandResult r = run("train " + kTiny + " --dry-run --tokens-per-second-per-gpu 7000");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* want : {"1 GPU = tp 1 x dp 1", "accumulation", "schedule", "66.7%", "memory/GPU",
                           "fits,", "7,000 tokens/s per GPU", "nothing was trained"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
}

TEST(PlanCli, ImpossibleLayoutsFailWithOneErrorLine) {
  // The tiny recipe: global batch 16 = micro-batch 16, so 2 GPUs cannot split it.
  for (std::string args : {"--world 2", "--gpu-memory 0.001", "--world 3 --set parallel.dp=2"}) {
    CommandResult r = run("train " + kTiny + " --dry-run " + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(r.output.rfind("error:", 0), 0u) << args << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << args << ": " << r.output;
  }
  CommandResult r = run("train " + kTiny + " --dry-run --world 2");
  EXPECT_NE(r.output.find("train.global_batch"), std::string::npos) << r.output;
}

// Issue 7: each TriLM recipe's own schedule, scaled down to 12 steps of a tiny model on the
// embedded corpus, shows both interventions in the metrics the trainer writes: at 50% (step 7)
// the LR restarts from the reduced peak, and from 2/3 (step 9) weight decay is 0.
TEST(PlanCli, ScaledDownTriLMSchedulesShowTheInterventions) {
  const fs::path dir = test_dir();
  const std::string tiny =
      " --set model.vocab_size=256 --set model.vocab_rows=256 --set model.hidden=32"
      " --set model.ffn=64 --set model.heads=2 --set model.layers=1 --set model.context=32"
      " --set parallel.tp=1 --set parallel.dp=0 --set parallel.zero=0 --set data.datasets=[]"
      " --set data.tokenizer= --set data.text=" +
      std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz" +
      " --set train.steps=12 --set train.seq_len=32 --set train.micro_batch=2"
      " --set train.global_batch=2 --set train.device=cpu --set train.precision=f32"
      " --set schedule.warmup_steps=1 --set checkpoint.dir= --set train.out= --set log.interval=1"
      " --set eval.interval=0 --set eval.batches=1 --set eval.sample_tokens=0";
  for (const Size& size : kSizes) {
    const std::string recipe = kRecipes + "trilm/" + size.name + ".yaml";
    const fs::path metrics = dir / (std::string("schedule-") + size.name + ".jsonl");
    fs::remove(metrics);
    CommandResult r = run("train " + recipe + tiny + " --set log.metrics=" + metrics.string());
    ASSERT_EQ(r.code, 0) << recipe << "\n" << r.output;
    std::map<int64_t, std::pair<double, double>> at;  // step -> (lr, weight decay)
    std::ifstream in(metrics);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j["event"] == "train")
        at[j["step"].get<int64_t>()] = {j["lr"].get<double>(), j["weight_decay"].get<double>()};
    }
    ASSERT_EQ(at.size(), 12u) << recipe;
    // Steps 2-6 decay the first stage (6 steps long) from its peak; step 7 restarts at the
    // reduced peak.
    EXPECT_NEAR(at[2].first, cosine(size.tri[0], 1.0 / 6), 1e-12) << recipe;
    EXPECT_LT(at[6].first, size.tri[1]) << recipe;
    EXPECT_NEAR(at[7].first, size.tri[1], 1e-12) << recipe;
    EXPECT_LT(at[12].first, at[7].first) << recipe;
    for (int64_t step = 1; step <= 12; step++)
      EXPECT_EQ(at[step].second, step < 9 ? 0.1 : 0.0) << recipe << " step " << step;
  }
}

namespace {
bool is_png(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  return in && magic == "\x89PNG\r\n\x1a\n" && fs::file_size(p) > 1000;
}
bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }
}  // namespace

TEST(PlotCli, MetricsToPng) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup installs it)";
  fs::path dir = test_dir();
  fs::path metrics = dir / "metrics.jsonl", png = dir / "curves.png";
  {
    std::ofstream out(metrics);
    for (int s = 10; s <= 100; s += 10)
      out << "{\"event\":\"train\",\"step\":" << s << ",\"loss\":" << 5.0 - s / 40.0
          << ",\"lr\":" << 1e-3 * (s < 50 ? 1 : 0.6) << ",\"weight_decay\":" << (s < 67 ? 0.1 : 0)
          << ",\"grad_norm\":1.0,\"tokens_per_s\":" << 7000 + s << "}\n";
    out << "{\"event\":\"checkpoint\",\"step\":50,\"path\":\"x.h5\"}\n";
    out << "{\"event\":\"eval\",\"step\":50,\"val_loss\":4.0}\n";
    out << "{\"event\":\"eval\",\"step\":100,\"val_loss\":3.0}\n";
  }
  CommandResult r = run("plot " + metrics.string() + " -o " + png.string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(is_png(png)) << r.output;
  // Without -o: beside the metrics.
  CommandResult beside = run("plot " + metrics.string());
  EXPECT_EQ(beside.code, 0) << beside.output;
  EXPECT_TRUE(is_png(dir / "metrics.png")) << beside.output;
  fs::remove_all(dir);
}

TEST(PlotCli, ScheduleToPng) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup installs it)";
  fs::path dir = test_dir(), png = dir / "schedule.png";
  CommandResult r = run("plot " + kRecipes + "trilm/3.9b.yaml --schedule -o " + png.string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(is_png(png)) << r.output;
  fs::remove_all(dir);
}

TEST(PlotCli, BadInputIsOneErrorLine) {
  fs::path dir = test_dir();
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  std::string train = "{\"event\":\"train\",\"step\":1,\"loss\":5.0}\n";
  struct Case {
    std::string path, want;
  };
  const Case cases[] = {
      {write("bad.jsonl", train + train + "{\"event\":\"train\",\"step\":3,\"loss\n"), ":3:"},
      {write("type.jsonl", train + "{\"event\":\"train\",\"step\":2,\"loss\":\"x\"}\n"), ":2:"},
      {write("empty.jsonl", "{\"event\":\"eval\",\"step\":1,\"val_loss\":3}\n"), "no {"},
      {(dir / "missing.jsonl").string(), "no such metrics file"},
  };
  for (const Case& c : cases) {
    CommandResult r = run("plot " + c.path + " -o " + (dir / "x.png").string());
    EXPECT_EQ(r.code, 2) << c.path << ": " << r.output;
    EXPECT_EQ(r.output.rfind("error: " + c.path, 0), 0u) << r.output;
    EXPECT_NE(r.output.find(c.want), std::string::npos) << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
  }
  fs::remove_all(dir);
}
