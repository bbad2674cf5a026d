// End to end on the CPU: a small TriLM and FloatLM learn, runs are deterministic, and trained
// models round-trip through their HDF5 files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/log.h"
#include "eval/generate.h"
#include "train/model_file.h"
#include "train/placement.h"
#include "train/trainer.h"

using namespace spectra;

namespace {

const std::string kCorpus = std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz";

Recipe small_recipe(const std::string& kind, int64_t steps, const std::string& extra = "") {
  log::set_quiet(true);
  std::string yaml =
      R"(
model: {kind: )" +
      kind +
      R"(, vocab_size: 256, vocab_rows: 256, hidden: 32, ffn: 64, heads: 2, layers: 1, context: 32}
data: {text: )" +
      kCorpus + R"(, val_fraction: 0.01}
optimizer: {beta1: 0.9, beta2: 0.95, eps: 1.0e-8, grad_clip: 1.0}
schedule:
  warmup_steps: 5
  lr: [{start: 0.0, peak: 0.01, shape: cosine, floor: 0.1}]
  weight_decay: [{start: 0.0, value: 0.1}]
train: {steps: )" +
      std::to_string(steps) +
      R"(, seq_len: 32, micro_batch: 4, global_batch: 8, device: cpu, precision: f32, seed: 5}
log: {interval: 1000}
eval: {batches: 2, sample_tokens: 0}
)" + extra;
  return parse_recipe(yaml, "test.yaml");
}

}  // namespace

TEST(Train, TriLMAndFloatLMLearn) {
  for (std::string kind : {"trilm", "floatlm"}) {
    TrainSummary s = train(small_recipe(kind, 60));
    ASSERT_EQ(s.losses.size(), 60u);
    EXPECT_NEAR(s.losses.front(), std::log(256.0), 0.3) << kind;  // starts near uniform
    EXPECT_LT(s.losses.back(), 3.5) << kind;                      // and learns byte statistics
    EXPECT_LT(s.val_loss, 3.6) << kind;
  }
}

TEST(Train, RunsAreBitwiseDeterministic) {
  TrainSummary a = train(small_recipe("trilm", 8)), b = train(small_recipe("trilm", 8));
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.val_loss, b.val_loss);
}

TEST(Train, RecomputationTrainsTheSameRun) {
  Recipe full = small_recipe("trilm", 8);
  full.train.recompute = "full";
  TrainSummary a = train(small_recipe("trilm", 8)), b = train(full);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.val_loss, b.val_loss);
}

TEST(Train, ModelFileRoundTrips) {
  auto dir = std::filesystem::temp_directory_path() / "spectra_test_model";
  std::filesystem::create_directories(dir);
  std::string path = (dir / "m.h5").string();
  Recipe r = small_recipe("trilm", 3);
  r.train.out = path;
  train(r);
  LoadedModel m = load_model(path, Device::cpu(), DType::f32);
  EXPECT_EQ(m.recipe.model.hidden, 32);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // The loaded model computes what the trained one did: greedy samples agree between two loads.
  LoadedModel again = load_model(path, Device::cpu(), DType::f32);
  SampleOptions o;
  o.tokens = 20;
  o.temperature = 0;
  EXPECT_EQ(generate(*m.model, nullptr, "In the", o), generate(*again.model, nullptr, "In the", o));
}

TEST(Train, BadModelFilesAreRefused) {
  auto dir = std::filesystem::temp_directory_path() / "spectra_test_model";
  std::filesystem::create_directories(dir);
  std::string junk = (dir / "junk.h5").string();
  { std::ofstream(junk) << "not hdf5"; }
  EXPECT_THROW(load_model(junk, Device::cpu(), DType::f32), UserError);
  EXPECT_THROW(load_model((dir / "missing.h5").string(), Device::cpu(), DType::f32), UserError);
}

TEST(Train, CpuRefusesHalfPrecision) {
  Recipe r = small_recipe("trilm", 1);
  r.train.precision = "bf16";
  EXPECT_THROW(resolve_placement(r), UserError);
}
