// Training on prepared token data, end to end through the CLI: a BPE tokenizer trained on the
// embedded corpus, `spectra prepare`, then `spectra train` on the datasets. The loss falls, the
// model file carries the tokenizer so `generate` decodes, a stop-and-resume run repeats the
// uninterrupted one exactly, 2 data-parallel ranks match one process, and data that does not fit
// the recipe fails before training with one error line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/hdf5.h"
#include "tests/run_command.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir =
    fs::temp_directory_path() / ("spectra_train_data_test-" + std::to_string(getpid()));
const std::string kBin = SPECTRA_BIN;
const std::string kCorpus = std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz";

// Trains a tokenizer of `vocab` entries and prepares the corpus with it, once per name.
void prepare(const std::string& name, int vocab) {
  // The directory is named by pid, and pids are reused: start from an empty one in each process
  // (the trainer appends to an existing metrics file).
  static const bool fresh = (fs::remove_all(kDir), true);
  (void)fresh;
  fs::create_directories(kDir);
  const std::string tok = (kDir / (name + ".json")).string();
  if (fs::exists(kDir / (name + ".h5"))) return;
  CommandResult t = run_command(kBin + " tokenizer train " + kCorpus + " -o " + tok +
                                " --vocab-size " + std::to_string(vocab));
  ASSERT_EQ(t.code, 0) << t.output;
  CommandResult p = run_command(kBin + " prepare -q --tokenizer " + tok + " -o " +
                                (kDir / (name + ".h5")).string() + " " + kCorpus);
  ASSERT_EQ(p.code, 0) << p.output;
}

// The tiny BPE TriLM, made smaller still, on dataset `data` (tokenizer `tok`).
std::string train_command(const std::string& run, int64_t steps, const std::string& extra,
                          const std::string& data = "bpe512", const std::string& tok = "bpe512") {
  return kBin + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/trilm-bpe.yaml" +
         " --set model.vocab_size=512 --set model.vocab_rows=512 --set model.hidden=64" +
         " --set model.ffn=128 --set model.layers=2 --set train.seq_len=64" +
         " --set train.micro_batch=4 --set train.global_batch=8 --set train.device=cpu" +
         " --set train.steps=" + std::to_string(steps) +
         " --set log.interval=1 --set eval.batches=2 --set eval.sample_tokens=0" +
         " --set data.tokenizer=" + (kDir / (tok + ".json")).string() +
         " --set data.datasets=" + (kDir / (data + ".h5")).string() +
         " --set log.metrics=" + (kDir / (run + ".jsonl")).string() + " " + extra;
}

// step -> loss (the last record of a step wins: a resumed run repeats none, but be safe).
std::map<int64_t, double> losses(const std::string& run) {
  std::map<int64_t, double> out;
  std::ifstream in(kDir / (run + ".jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "train") out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

class TrainData : public ::testing::Test {
 protected:
  void SetUp() override { prepare("bpe512", 512); }
};

TEST_F(TrainData, LearnsAndTheModelFileDecodes) {
  const std::string model = (kDir / "learn.h5").string();
  CommandResult r = run_command(train_command(
      "learn", 60,
      "--set train.out=" + model + " --set eval.sample_tokens=12 --set schedule.warmup_steps=5"));
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<int64_t, double> l = losses("learn");
  ASSERT_EQ(l.size(), 60u);
  EXPECT_NEAR(l[1], std::log(512.0), 0.5);  // starts near uniform over the vocabulary
  EXPECT_LT(l[60], l[1] - 1.2) << r.output;
  // Bits per byte use the data's bytes per token (about 3 for this tokenizer), not 1.
  ASSERT_NE(r.output.find("bits/byte"), std::string::npos) << r.output;
  ASSERT_NE(r.output.find("sample: And God said"), std::string::npos) << r.output;

  // The model file holds the tokenizer: generate encodes the prompt and decodes BPE tokens.
  spectra::h5::File f = spectra::h5::File::open_read(model);
  EXPECT_TRUE(f.exists("tokenizer.json"));
  CommandResult g = run_command(kBin + " generate " + model + " --prompt 'And the' -n 8");
  ASSERT_EQ(g.code, 0) << g.output;
  EXPECT_TRUE(g.output.starts_with("And the")) << g.output;
  EXPECT_GT(g.output.size(), std::string("And the\n").size() + 8) << g.output;  // > 1 byte/token
}

TEST_F(TrainData, StopAndResumeRepeatsTheUninterruptedRun) {
  fs::remove(kDir / "whole.jsonl");
  fs::remove(kDir / "parts.jsonl");
  fs::remove_all(kDir / "ckpt");
  CommandResult whole = run_command(train_command("whole", 8, ""));
  ASSERT_EQ(whole.code, 0) << whole.output;
  const std::string ck =
      " --set checkpoint.interval=100 --set checkpoint.dir=" + (kDir / "ckpt").string();
  CommandResult first = run_command(train_command("parts", 8, ck + " --stop-at 3"));
  ASSERT_EQ(first.code, 0) << first.output;
  CommandResult second = run_command(train_command("parts", 8, ck + " --resume auto"));
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("at step 3"), std::string::npos) << second.output;
  EXPECT_EQ(losses("parts"), losses("whole"));  // bit-exact: same batches, same arithmetic
}

TEST_F(TrainData, TwoDataParallelRanksMatchOneProcess) {
  CommandResult one = run_command(train_command("dp1", 4, ""));
  ASSERT_EQ(one.code, 0) << one.output;
  CommandResult two =
      run_command(std::string(SPECTRA_MPIEXEC) + " --allow-run-as-root --oversubscribe -np 2 " +
                  train_command("dp2", 4, "--set train.micro_batch=2"));
  ASSERT_EQ(two.code, 0) << two.output;
  std::map<int64_t, double> a = losses("dp1"), b = losses("dp2");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (auto [step, loss] : a) EXPECT_NEAR(b[step], loss, 1e-5 * loss) << "step " << step;
}

TEST_F(TrainData, DataThatDoesNotFitTheRecipeIsRefused) {
  prepare("bpe400", 400);
  auto refused = [](const std::string& cmd, const std::string& what) {
    CommandResult r = run_command(cmd);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
    EXPECT_TRUE(r.output.starts_with("error: ")) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
  };
  // Datasets prepared with another tokenizer than the recipe's.
  refused(train_command("bad", 2, "", "bpe400", "bpe512"), "tokenizer sha256");
  // A tokenizer larger than the model's vocabulary.
  refused(train_command("bad", 2, "--set model.vocab_size=300 --set model.vocab_rows=300"),
          "model.vocab_size is 300");
  // A dataset that does not exist, named with the key that set it.
  refused(train_command("bad", 2, "", "missing"), "data.datasets");
  // Both a byte corpus and datasets.
  refused(train_command("bad", 2, "--set data.text=" + kCorpus), "data.text");
  // The dry run checks the same.
  refused(train_command("bad", 2, "--dry-run", "bpe400", "bpe512"), "tokenizer sha256");
  // A dry run with a missing token file still prints the plan, names the file, and fails.
  CommandResult r = run_command(train_command("bad", 2, "--dry-run", "missing"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("nothing was trained"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory/GPU"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("MISSING: "), std::string::npos) << r.output;
  const std::string last = r.output.substr(r.output.rfind("error: "));
  EXPECT_EQ(count_lines(last), 1) << r.output;
  EXPECT_NE(last.find("1 data file is missing"), std::string::npos) << r.output;
  EXPECT_NE(last.find("key 'data.datasets'"), std::string::npos) << r.output;
  EXPECT_NE(last.find("missing"), std::string::npos) << r.output;
}

// Issue 7: every suite recipe passes its dry run (recipe, layout, memory and the data it
// names: here the embedded corpus prepared with a small tokenizer, which fits any vocabulary).
TEST_F(TrainData, EverySuiteRecipeDryRuns) {
  const std::string data = " --set data.tokenizer=" + (kDir / "bpe512.json").string() +
                           " --set data.datasets=" + (kDir / "bpe512.h5").string();
  for (const char* kind : {"trilm", "floatlm"})
    for (const char* size :
         {"99m", "190m", "390m", "560m", "830m", "1.1b", "1.5b", "2.4b", "3.9b"}) {
      std::string recipe =
          std::string(SPECTRA_SOURCE_DIR) + "/recipes/" + kind + "/" + size + ".yaml";
      CommandResult r = run_command(kBin + " train " + recipe + " --dry-run" + data);
      EXPECT_EQ(r.code, 0) << recipe << "\n" << r.output;
      EXPECT_NE(r.output.find("nothing was trained"), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("1 dataset: 1.82M training tokens in windows of 2048"),
                std::string::npos)
          << r.output;
    }
}

}  // namespace
