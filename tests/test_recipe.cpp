// Recipes: the 18 Spectra runs match SPECTRA.md (parameter counts, embedding rows, schedules),
// the tiny ones load, and every kind of mistake is a UserError naming the file, line and key.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "train/plan.h"
#include "train/recipe.h"

using namespace spectra;
namespace fs = std::filesystem;

namespace {

const std::string kRecipes = std::string(SPECTRA_SOURCE_DIR) + "/recipes/";

struct Size {
  const char* name;
  // SPECTRA.md's table to its printed precision, except where the paper's figure is not the
  // formula's rounded to 4 digits: 190M (190,497,024 prints 190.5M, the paper 190.0M) and 3.9B
  // (3,989,591,040 prints 3.990B, the paper 3.989B: truncated, not rounded).
  const char* params;
  int64_t rows;
  int tp;
  double tri_peak[2], float_peak;
};
const Size kSizes[] = {
    {"99m", "99.74M", 50304, 1, {2.4e-3, 1.5e-3}, 6e-4},
    {"190m", "190.5M", 50304, 1, {2.4e-3, 1.5e-3}, 6e-4},  // the paper prints 190.0M
    {"390m", "392.4M", 50304, 1, {1.8e-3, 1.2e-3}, 3e-4},
    {"560m", "569.2M", 50304, 1, {1.6e-3, 1.1e-3}, 3e-4},
    {"830m", "834.0M", 50304, 1, {1.5e-3, 1.0e-3}, 2.5e-4},
    {"1.1b", "1.149B", 50432, 2, {1.3e-3, 9e-4}, 2e-4},
    {"1.5b", "1.515B", 50432, 2, {1.2e-3, 8e-4}, 2e-4},
    {"2.4b", "2.461B", 50304, 3, {1.2e-3, 8e-4}, 1.6e-4},
    {"3.9b", "3.990B", 50688, 6, {1.2e-3, 8e-4}, 1.2e-4},  // the paper prints 3.989B
};

std::string write_file(const std::string& name, const std::string& text) {
  fs::path dir = fs::temp_directory_path() / "spectra_recipe_test";
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

// The message of the UserError that loading `path` (with overrides) throws; "" if none.
std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_recipe(path, overrides);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

const std::string kModel =
    "model: {kind: trilm, vocab_size: 256, hidden: 64, ffn: 128, heads: 4, layers: 1, context: "
    "64}\n";

}  // namespace

TEST(Recipe, SpectraSuiteMatchesThePaper) {
  for (const char* kind : {"trilm", "floatlm"}) {
    for (const Size& s : kSizes) {
      std::string path = kRecipes + kind + "/" + s.name + ".yaml";
      SCOPED_TRACE(path);
      Recipe r = load_recipe(path);
      const ModelConfig& m = r.model;
      EXPECT_EQ(model_kind_name(m.kind), std::string(kind));
      EXPECT_EQ(r.size, s.name);
      EXPECT_EQ(format_params(m.parameter_count_unpadded()), s.params);
      EXPECT_EQ(m.vocab_size, 50277);
      EXPECT_EQ(m.vocab_rows, s.rows);
      EXPECT_EQ(r.parallel.tp, s.tp);
      EXPECT_EQ(m.context, 2048);
      EXPECT_EQ(m.head_dim(), std::string(s.name) == "3.9b" ? 128 : 64);
      EXPECT_FLOAT_EQ(m.rope_theta, 10000.f);
      EXPECT_FLOAT_EQ(m.norm_eps, 1e-5f);
      EXPECT_FLOAT_EQ(m.init_std, 0.02f);
      EXPECT_EQ(r.train.seq_len * r.train.global_batch, 1048576);
      EXPECT_EQ(r.train.steps, 286102);
      EXPECT_EQ(r.train.precision, "bf16");
      EXPECT_EQ(r.train.device, "cuda");
      EXPECT_EQ(r.schedule.warmup_steps, 1000);
      EXPECT_DOUBLE_EQ(r.optimizer.beta1, 0.9);
      EXPECT_DOUBLE_EQ(r.optimizer.beta2, 0.95);
      EXPECT_DOUBLE_EQ(r.optimizer.eps, 1e-8);
      EXPECT_DOUBLE_EQ(r.optimizer.grad_clip, 1.0);
      EXPECT_TRUE(r.data.tokenizer.ends_with("data/tokenizers/gpt-neox-20b.json"));
      EXPECT_EQ(r.data.datasets.size(), 1u);
      EXPECT_FALSE(r.checkpoint.dir.empty());
      bool tri = m.ternary();
      ASSERT_EQ(r.schedule.lr.size(), tri ? 2u : 1u);
      EXPECT_DOUBLE_EQ(r.schedule.lr[0].peak, tri ? s.tri_peak[0] : s.float_peak);
      if (tri) EXPECT_DOUBLE_EQ(r.schedule.lr[1].peak, s.tri_peak[1]);
      EXPECT_DOUBLE_EQ(weight_decay_at(r.schedule, 0, r.train.steps), 0.1);
      EXPECT_DOUBLE_EQ(weight_decay_at(r.schedule, r.train.steps - 1, r.train.steps),
                       tri ? 0.0 : 0.1);
      // The plan names the count, and the layout fits an 80 GB GPU.
      std::string plan = describe_model(r);
      EXPECT_NE(plan.find(s.params), std::string::npos) << plan;
      EXPECT_LT(plan_memory(r).total(), 80e9) << plan;
      // The resolved text re-parses to the same recipe.
      Recipe again = parse_recipe(r.text, "again.yaml");
      EXPECT_EQ(again.text, r.text);
      EXPECT_EQ(again.model.vocab_rows, m.vocab_rows);
    }
  }
}

TEST(Recipe, QuantLmRecipesNameTheirFloatLmAndBits) {
  for (const Size& s : kSizes)
    for (int bits : {3, 4, 6, 8}) {
      const std::string path =
          kRecipes + "quantlm/" + s.name + "-" + std::to_string(bits) + "bit.yaml";
      SCOPED_TRACE(path);
      Recipe r = load_recipe(path);
      Recipe floatlm = load_recipe(kRecipes + "floatlm/" + s.name + ".yaml");
      EXPECT_TRUE(r.quantize.present);
      EXPECT_EQ(r.model.kind, ModelKind::floatlm);
      EXPECT_EQ(r.train.out, floatlm.train.out);          // the model it quantizes
      EXPECT_EQ(r.data.datasets, floatlm.data.datasets);  // and calibrates on
      EXPECT_EQ(r.quantize.bits, bits);
      EXPECT_EQ(r.quantize.method, "gptq");
      EXPECT_EQ(r.quantize.group_size, 128);
      EXPECT_EQ(r.quantize.scheme, "sym");
      EXPECT_EQ(r.quantize.order, "natural");
      EXPECT_DOUBLE_EQ(r.quantize.damp, 0.01);
      EXPECT_EQ(r.quantize.samples, 128);
      EXPECT_EQ(r.quantize.out, fmt::format("runs/quantlm-{}-{}bit/model.h5", s.name, bits));
      Recipe again = parse_recipe(r.text, "again.yaml");
      EXPECT_EQ(again.text, r.text);
      EXPECT_TRUE(again.quantize.present);
      EXPECT_EQ(floatlm.text.find("quantize:"), std::string::npos);  // training recipes: none
    }
  const std::string bad = write_file("q5.yaml", kModel + "quantize: {bits: 5}\n");
  EXPECT_NE(load_error(bad).find("quantize.bits"), std::string::npos) << load_error(bad);
  EXPECT_NE(load_error(bad, {"quantize.bits=4", "quantize.order=random"}).find("quantize.order"),
            std::string::npos);
}

TEST(Recipe, TinyRecipesLoad) {
  for (const char* kind : {"trilm", "floatlm"}) {
    Recipe r = load_recipe(kRecipes + "tiny/" + kind + ".yaml");
    EXPECT_EQ(model_kind_name(r.model.kind), std::string(kind));
    EXPECT_EQ(r.model.vocab_size, 256);
    EXPECT_EQ(r.model.vocab_rows, 256);
    EXPECT_EQ(r.train.seq_len, 128);
    EXPECT_EQ(r.train.precision, "f32");
    EXPECT_EQ(r.eval.prompt, "And God said");
    // Relative data paths resolve against the project root, whatever the working directory.
    EXPECT_TRUE(fs::path(r.data.text).is_absolute()) << r.data.text;
    EXPECT_TRUE(fs::exists(r.data.text)) << r.data.text;
    EXPECT_EQ(parse_recipe(r.text, "again.yaml").text, r.text);
  }
  Recipe t = load_recipe(kRecipes + "tiny/trilm.yaml");
  int64_t n = t.train.steps;  // the scaled-down TriLM interventions
  EXPECT_GT(lr_at(t.schedule, n / 2 - 1, n), 0.1 * 3e-3 * 0.99);
  EXPECT_DOUBLE_EQ(lr_at(t.schedule, n / 2, n), 2e-3);
  EXPECT_DOUBLE_EQ(weight_decay_at(t.schedule, 2 * n / 3 - 1, n), 0.1);
  EXPECT_DOUBLE_EQ(weight_decay_at(t.schedule, 2 * n / 3, n), 0.0);
}

TEST(Recipe, Overrides) {
  Recipe r =
      load_recipe(kRecipes + "tiny/trilm.yaml",
                  {"train.steps=5", "schedule.lr.1.peak=0.01", "eval.prompt=In the: beginning",
                   "data.text=", "data.datasets=[a.h5, /b.h5]", "parallel.dp=1"});
  EXPECT_EQ(r.train.steps, 5);
  EXPECT_DOUBLE_EQ(r.schedule.lr[1].peak, 0.01);
  EXPECT_EQ(r.eval.prompt, "In the: beginning");
  ASSERT_EQ(r.data.datasets.size(), 2u);
  EXPECT_EQ(r.data.datasets[0], (fs::current_path() / "a.h5").string());
  EXPECT_EQ(r.data.datasets[1], "/b.h5");
  EXPECT_EQ(r.parallel.dp, 1);
  EXPECT_NE(r.text.find("In the: beginning"), std::string::npos) << r.text;
  // The vocabulary is padded to 128·tp when vocab_rows is not given.
  Recipe p = load_recipe(kRecipes + "trilm/99m.yaml", {"parallel.tp=4"});
  EXPECT_EQ(p.model.vocab_rows, 50688);
}

TEST(Recipe, ErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml, line, key, what;
    std::vector<std::string> overrides = {};
  };
  const std::vector<Case> cases = {
      {kModel + "train: {stepz: 3}\n", ":2:", "train.stepz", "did you mean 'steps'"},
      {kModel + "train:\n  steps: three\n", ":3:", "train.steps", "string"},
      {kModel + "train:\n  steps: 3.5\n", ":3:", "train.steps", "not an integer"},
      {kModel + "train:\n  steps: '3'\n", ":3:", "train.steps", "string"},
      {kModel + "train:\n  steps: 3.0\n", ":3:", "train.steps", "not an integer"},
      {kModel + "train:\n  seed: -1\n", ":3:", "train.seed", ">= 0"},
      {kModel + "train:\n  steps: [3]\n", ":3:", "train.steps", "not a list"},
      {kModel + "optimizer: {beta1: high}\n", ":2:", "optimizer.beta1", "not a number"},
      {kModel + "modle: {}\n", ":2:", "modle", "did you mean 'model'"},
      {kModel + "train: {device: tpu}\n", ":2:", "train.device", "cuda:N"},
      {kModel + "train: {precision: f64}\n", ":2:", "train.precision", "f32|bf16|fp16"},
      {kModel + "train: {steps: -3}\n", ":2:", "train.steps", "positive"},
      {kModel + "data: {val_fraction: 1.5}\n", ":2:", "data.val_fraction", "[0, 1)"},
      {"model:\n  kind: trilm\n  vocab_size: 256\n  hidden: 64\n  ffn: 128\n  heads: 5\n"
       "  layers: 1\n  context: 64\n",
       ":6:", "model.heads", "heads 5 does not divide hidden 64"},
      {kModel + "parallel:\n  tp: 3\n", ":3:", "parallel.tp", "does not divide model.heads 4"},
      {kModel + "train: {seq_len: 128}\n", ":2:", "train.seq_len", "exceeds model.context 64"},
      {kModel + "train: {micro_batch: 3, global_batch: 8}\n", ":2:", "train.micro_batch",
       "does not divide"},
      {"model: {kind: trilm, vocab_size: 256, vocab_rows: 100, hidden: 64, ffn: 128, heads: 4, "
       "layers: 1, context: 64}\n",
       ":1:", "model.vocab_rows", "less than vocab_size"},
      {kModel +
           "schedule:\n  lr:\n    - {start: 0.0, peak: 0.01}\n    - {start: 0.0, peak: 0.001}\n",
       ":5:", "schedule.lr[1].start", "starts must increase"},
      {kModel + "schedule:\n  lr:\n    - {start: 0.0, peek: 0.01}\n", ":4:", "schedule.lr[0].peek",
       "did you mean 'peak'"},
      {"model: {kind: trilm, kind: floatlm}\n", ":1:", "model.kind", "twice"},
      {"model: {kind: trilm\ntrain: {steps: 3}\n", ":2:", "", "malformed YAML"},
      {"model:\n  kind: trilm\n hidden: 3\n", ":3:", "", "malformed YAML"},
      {kModel, "yaml (--set model.headz=4)", "model.headz", "not a recipe key", {"model.headz=4"}},
      {kModel, "yaml (--set train.steps=x)", "train.steps", "string", {"train.steps=x"}},
      {kModel, "yaml (--set model.heads=3)", "model.heads", "does not divide", {"model.heads=3"}},
      {kModel, "yaml (--set train.steps)", "", "KEY=VALUE", {"train.steps"}},
      {"model: {kind: trilm}\n", "bad", "model.vocab_size", "missing"},
      {kModel + "data: {datasets: [a.h5, b.h5], weights: [1]}\n", ":2:", "data.weights",
       "one mixture weight per dataset"},
      {kModel + "data: {datasets: [a.h5], weights: [-1]}\n", ":2:", "data.weights[0]", "positive"},
      {kModel + "data: {text: a.txt, datasets: [a.h5]}\n", ":2:", "data.datasets", "data.text"},
      {kModel,
       "yaml (--set model.ternary_shards=3)",
       "model.ternary_shards",
       "not a multiple of parallel.tp 2",
       {"parallel.tp=2", "model.ternary_shards=3"}},
      {kModel + "train: {device: cpu, precision: bf16}\n", ":2:", "train.precision",
       "train.device is cpu"},
      {kModel,
       "yaml (--set model.attention=flash)",
       "model.attention",
       "for bf16 or fp16",
       {"model.attention=flash"}},
      {kModel,
       "yaml (--set model.attention=fast)",
       "model.attention",
       "reference|flash|cudnn",
       {"model.attention=fast"}},
      {kModel + "train: {cuda_graph: true, device: cpu}\n", ":2:", "train.cuda_graph",
       "the graph runs on a GPU"},
      {kModel,
       "yaml (--set train.cuda_graph=true)",
       "train.cuda_graph",
       "runs one process",
       {"train.cuda_graph=true", "train.device=cuda", "train.precision=bf16", "parallel.tp=2"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    const Case& c = cases[i];
    std::string path = write_file("bad" + std::to_string(i) + ".yaml", c.yaml);
    std::string msg = load_error(path, c.overrides);
    SCOPED_TRACE(c.yaml);
    EXPECT_NE(msg.find(path + (c.line.starts_with(":") ? c.line : "")), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.line), std::string::npos) << msg;
    if (!c.key.empty()) EXPECT_NE(msg.find("'" + c.key + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;  // one line
  }
  EXPECT_NE(load_error("/no/such/recipe.yaml").find("/no/such/recipe.yaml"), std::string::npos);
}

TEST(Recipe, BaseChainsMergeAndNameTheirFiles) {
  std::string base = write_file("base_a.yaml", kModel + "train: {steps: 7, seed: 9}\n");
  std::string child = write_file("child_a.yaml", "base: base_a.yaml\ntrain: {steps: 11}\n");
  std::string grandchild =
      write_file("grandchild_a.yaml", "base: child_a.yaml\nmodel: {layers: 3}\n");
  Recipe r = load_recipe(grandchild);
  EXPECT_EQ(r.train.steps, 11);
  EXPECT_EQ(r.train.seed, 9u);
  EXPECT_EQ(r.model.layers, 3);
  EXPECT_EQ(r.model.hidden, 64);

  // An error in a base names the base file and its line.
  std::string bad_base = write_file("base_b.yaml", kModel + "train:\n  stepz: 7\n");
  std::string bad_child = write_file("child_b.yaml", "base: base_b.yaml\ntrain: {steps: 11}\n");
  std::string msg = load_error(bad_child);
  EXPECT_NE(msg.find(bad_base + ":3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.stepz"), std::string::npos) << msg;

  // Cycles.
  std::string a = write_file("cycle_a.yaml", "base: cycle_b.yaml\n" + kModel);
  write_file("cycle_b.yaml", "base: cycle_a.yaml\n");
  msg = load_error(a);
  EXPECT_NE(msg.find("cycle_b.yaml:1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'base'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cycle"), std::string::npos) << msg;
  std::string self = write_file("cycle_self.yaml", "base: cycle_self.yaml\n");
  EXPECT_NE(load_error(self).find("cycle"), std::string::npos);

  // A missing base.
  std::string orphan = write_file("orphan.yaml", kModel + "base: nowhere.yaml\n");
  msg = load_error(orphan);
  EXPECT_NE(msg.find(orphan + ":2:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nowhere.yaml"), std::string::npos) << msg;
}

TEST(Recipe, TriLMScheduleAtTheListedFractions) {
  Recipe r = load_recipe(kRecipes + "trilm/1.1b.yaml");
  const Recipe::Schedule& s = r.schedule;
  auto cosine = [](double peak, double p) {
    return peak * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p)));
  };
  const int64_t n = 300000;                         // fractions land on whole steps
  EXPECT_DOUBLE_EQ(lr_at(s, 0, n), 1.3e-3 / 1000);  // warmup
  EXPECT_NEAR(lr_at(s, n / 4, n), cosine(1.3e-3, 0.5), 1e-12);
  EXPECT_NEAR(lr_at(s, n / 2 - 1, n), 1.3e-4, 1e-9);  // the end of the first stage
  EXPECT_DOUBLE_EQ(lr_at(s, n / 2, n), 9e-4);         // 50%: the reduced peak
  EXPECT_NEAR(lr_at(s, 2 * n / 3, n), cosine(9e-4, 1.0 / 3), 1e-12);
  EXPECT_NEAR(lr_at(s, n, n), 9e-5, 1e-15);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 0, n), 0.1);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, n / 2, n), 0.1);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 2 * n / 3 - 1, n), 0.1);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 2 * n / 3, n), 0.0);  // 66.7%: weight decay off
  EXPECT_DOUBLE_EQ(weight_decay_at(s, n, n), 0.0);
  // The recipe's own step count: the same values, to the rounding of the fractions.
  const int64_t t = r.train.steps;
  EXPECT_NEAR(lr_at(s, t / 4, t), cosine(1.3e-3, 0.5), 1e-8);
  EXPECT_DOUBLE_EQ(lr_at(s, (t + 1) / 2, t), cosine(9e-4, double((t + 1) / 2) / t * 2 - 1));
  EXPECT_DOUBLE_EQ(weight_decay_at(s, int64_t(std::ceil(t * 0.667)), t), 0.0);
  EXPECT_NEAR(lr_at(s, t, t), 9e-5, 1e-15);
}

TEST(Recipe, FloatLMScheduleIsOneCosine) {
  Recipe r = load_recipe(kRecipes + "floatlm/1.1b.yaml");
  const Recipe::Schedule& s = r.schedule;
  auto cosine = [](double p) { return 2e-4 * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p))); };
  const int64_t n = 300000;
  EXPECT_DOUBLE_EQ(lr_at(s, 0, n), 2e-4 / 1000);
  for (double f : {0.25, 0.5, 2.0 / 3, 1.0}) {
    int64_t step = int64_t(std::llround(f * n));
    EXPECT_NEAR(lr_at(s, step, n), cosine(double(step) / n), 1e-15) << f;
    EXPECT_DOUBLE_EQ(weight_decay_at(s, step, n), 0.1) << f;
  }
  EXPECT_NEAR(lr_at(s, n / 2, n), 1.1e-4, 1e-15);
  EXPECT_NEAR(lr_at(s, n, n), 2e-5, 1e-15);
}

TEST(Recipe, WarmupRampsLinearlyToThePeak) {
  Recipe r = load_recipe(kRecipes + "floatlm/99m.yaml");
  const Recipe::Schedule& s = r.schedule;
  const int64_t n = r.train.steps;
  for (int64_t step : {0, 1, 249, 499, 998, 999})
    EXPECT_DOUBLE_EQ(lr_at(s, step, n), 6e-4 * double(step + 1) / 1000) << step;
  EXPECT_LT(lr_at(s, 1000, n), 6e-4);
  EXPECT_GT(lr_at(s, 1000, n), 6e-4 * 0.9999);
}

TEST(Recipe, StageShapes) {
  Recipe r = parse_recipe(kModel + R"(
schedule:
  lr:
    - {start: 0.0, peak: 1.0, shape: linear, floor: 0.5}
    - {start: 0.5, peak: 0.2, shape: constant}
  weight_decay: [{start: 0.0, value: 0.3}, {start: 0.25, value: 0.2}, {start: 0.75, value: 0.0}]
)",
                          "shapes.yaml");
  const Recipe::Schedule& s = r.schedule;
  EXPECT_DOUBLE_EQ(lr_at(s, 0, 100), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 25, 100), 0.75);
  EXPECT_DOUBLE_EQ(lr_at(s, 50, 100), 0.2);
  EXPECT_DOUBLE_EQ(lr_at(s, 99, 100), 0.2);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 24, 100), 0.3);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 25, 100), 0.2);
  EXPECT_DOUBLE_EQ(weight_decay_at(s, 80, 100), 0.0);
  // Defaults: one cosine stage and constant weight decay; seq_len follows the context.
  Recipe d = parse_recipe(kModel, "defaults.yaml");
  EXPECT_EQ(d.schedule.lr.size(), 1u);
  EXPECT_EQ(d.schedule.weight_decay.size(), 1u);
  EXPECT_EQ(d.train.seq_len, 64);
}

TEST(Recipe, MemoryPlan) {
  Recipe big = load_recipe(kRecipes + "trilm/3.9b.yaml");
  MemoryPlan p6 = plan_memory(big);
  // Per TP rank: a sixth of the projections and of the padded vocabulary, the norms whole.
  const double d = 3072, L = 30, f = 9216, rows = 50688;
  EXPECT_EQ(p6.rank_params,
            int64_t(L * (4 * d * d + 3 * d * f) / 6 + 2 * rows * d / 6 + (2 * L + 1) * d));
  EXPECT_DOUBLE_EQ(p6.master, 4.0 * double(p6.rank_params));
  EXPECT_DOUBLE_EQ(p6.compute, 2.0 * double(p6.rank_params));
  EXPECT_DOUBLE_EQ(plan_memory(big, 8).optimizer, 8.0 * double(p6.rank_params) / 8);  // ZeRO-1
  Recipe one = load_recipe(kRecipes + "trilm/1.1b.yaml", {"parallel.tp=1"});
  MemoryPlan p1 = plan_memory(one);
  EXPECT_EQ(p1.rank_params, one.model.parameter_count());
  EXPECT_LT(p1.total(), 80e9);
  std::string text = describe_model(one);
  EXPECT_NE(text.find("memory/GPU"), std::string::npos) << text;
  EXPECT_NE(text.find("FLOPs/token"), std::string::npos) << text;
  EXPECT_EQ(format_params(999'960'000), "1.000B");
  EXPECT_EQ(format_params(918'000), "918.0K");
}
