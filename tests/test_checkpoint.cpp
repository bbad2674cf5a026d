// Checkpoints through the CLI as users run it: bit-exact resume, SIGKILL at random moments
// (some during checkpoint writing) never costs more than one interval nor leaves a file that
// verifies but is not valid, SIGTERM checkpoints and exits cleanly, and truncated, corrupted,
// foreign or mismatched files are refused with one error line.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/run_command.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace fs = std::filesystem;

namespace {

const fs::path kDir =
    fs::temp_directory_path() / ("spectra_checkpoint_test-" + std::to_string(getpid()));

std::string command(const std::string& name, int64_t steps, const std::string& extra) {
  return std::string(SPECTRA_BIN) + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/trilm.yaml" +
         " --set model.hidden=64 --set model.ffn=128 --set model.layers=2 --set train.seq_len=64" +
         " --set train.micro_batch=8 --set train.global_batch=8 --set train.device=cpu" +
         " --set train.steps=" + std::to_string(steps) +
         " --set log.interval=1 --set eval.batches=1" +
         " --set eval.sample_tokens=0 --set checkpoint.interval=4 --set checkpoint.keep=2" +
         " --set checkpoint.dir=" + (kDir / name).string() +
         " --set log.metrics=" + (kDir / (name + ".jsonl")).string() + " " + extra;
}

// step -> loss from a metrics file (the last record of a step wins: a resumed run repeats some).
std::map<int64_t, double> losses(const std::string& name) {
  std::map<int64_t, double> out;
  std::ifstream in(kDir / (name + ".jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j["event"] == "train")
      out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

std::string newest(const std::string& name) {
  std::string best;
  for (const auto& e : fs::directory_iterator(kDir / name))
    if (e.path().extension() == ".h5" && e.path().string() > best) best = e.path().string();
  return best;
}

// Starts `cmd` (the shell execs it: the pid is spectra's).
pid_t spawn(const std::string& cmd) {
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

int64_t step_of_path(const std::string& output) {  // "resumed from .../step-00000012.h5 at step 12"
  size_t at = output.find("resumed from ");
  if (at == std::string::npos) return 0;
  size_t s = output.find(" at step ", at);
  return std::stoll(output.substr(s + 9));
}

void fresh(const std::string& name) {
  fs::remove_all(kDir / name);
  fs::remove(kDir / (name + ".jsonl"));
  fs::create_directories(kDir);
}

class Checkpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fresh("ref");
    CommandResult r = run_command(command("ref", 40, ""));
    ASSERT_EQ(r.code, 0) << r.output;
  }
};

}  // namespace

TEST_F(Checkpoint, StopAndResumeIsBitExact) {
  fresh("split");
  CommandResult a = run_command(command("split", 40, "--stop-at 20"));
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.output.find("stopping after step 20"), std::string::npos) << a.output;
  CommandResult b = run_command(command("split", 40, "--resume auto"));
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("resumed from"), std::string::npos) << b.output;
  auto ref = losses("ref"), got = losses("split");
  ASSERT_EQ(got.size(), ref.size());
  for (auto& [step, loss] : ref) EXPECT_EQ(got[step], loss) << "step " << step;  // bit for bit
  CommandResult same = run_command(std::string(SPECTRA_BIN) + " inspect " + newest("split"));
  EXPECT_EQ(same.code, 0) << same.output;
  EXPECT_NE(same.output.find("verified"), std::string::npos);
}

TEST_F(Checkpoint, SigtermCheckpointsAndExitsCleanly) {
  fresh("term");
  pid_t pid = spawn(command("term", 100000, ""));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto l = losses("term");
  ASSERT_FALSE(l.empty());
  char want[32];
  snprintf(want, sizeof want, "step-%08lld.h5", static_cast<long long>(l.rbegin()->first));
  EXPECT_EQ(fs::path(newest("term")).filename().string(), want);
}

// Checkpoints are written in the background (checkpoint.async, the default), stretched to a few
// hundred milliseconds each (SPECTRA_CHECKPOINT_WRITE_DELAY_MS) so that kills land inside the
// writes while training has moved on. No file under a final name may fail to verify, the resumed
// run must continue the reference exactly, and a kill may cost at most the write in flight: the
// resume starts no more than two intervals before the last logged step (one, when saving
// synchronously).
TEST_F(Checkpoint, SurvivesSigkillAtRandomMoments) {
  const int64_t steps = 160, interval = 4;
  fresh("ref160");
  CommandResult ref_run = run_command(command("ref160", steps, ""));
  ASSERT_EQ(ref_run.code, 0) << ref_run.output;
  auto ref = losses("ref160");
  std::mt19937 rng(20261122);
  int inside_a_write = 0;  // trials killed while a write ran behind later training steps
  for (int trial = 0; trial < 20; trial++) {
    fresh("kill");
    pid_t pid = spawn("env SPECTRA_CHECKPOINT_WRITE_DELAY_MS=3 " + command("kill", steps, ""));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 1500)(rng)));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    const auto before = losses("kill");
    const int64_t logged = before.empty() ? 0 : before.rbegin()->first;
    // Every checkpoint under its final name verifies (a killed write leaves only a .tmp).
    if (fs::exists(kDir / "kill"))
      for (const auto& e : fs::directory_iterator(kDir / "kill")) {
        const std::string file = e.path().filename().string();
        if (e.path().extension() == ".tmp" && file.size() > 13 &&
            std::stoll(file.substr(5, 8)) < logged)
          inside_a_write++;
        if (e.path().extension() == ".h5") {
          CommandResult v = run_command(std::string(SPECTRA_BIN) + " inspect " + e.path().string());
          EXPECT_EQ(v.code, 0) << "trial " << trial << ": " << e.path()
                               << " does not verify: " << v.output;
        }
      }
    CommandResult resumed = run_command(command("kill", steps, "--resume auto"));
    ASSERT_EQ(resumed.code, 0) << "trial " << trial << ": " << resumed.output;
    const int64_t from = step_of_path(resumed.output);
    EXPECT_LE(logged - from, 2 * interval)
        << "trial " << trial << ": killed after step " << logged << ", resumed from " << from;
    auto got = losses("kill");
    for (auto& [step, loss] : ref)
      ASSERT_EQ(got[step], loss) << "trial " << trial << " step " << step;
  }
  EXPECT_GT(inside_a_write, 0) << "no kill landed inside a background write";
}

TEST_F(Checkpoint, BadFilesAreRefusedWithOneLine) {
  fresh("bad");
  ASSERT_EQ(run_command(command("bad", 8, "")).code, 0);
  const std::string good = newest("bad");
  auto refuse = [&](const std::string& path, const std::string& why,
                    const std::string& extra = "") {
    CommandResult r = run_command(command("bad", 8, "--resume " + path + " " + extra));
    EXPECT_EQ(r.code, 2) << why << ": " << r.output;
    EXPECT_EQ(r.output.rfind("error:", 0), 0u) << why << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << why << ": " << r.output;
    EXPECT_NE(r.output.find(path), std::string::npos) << why << ": " << r.output;
  };
  // Truncated: half the file.
  std::string truncated = (kDir / "truncated.h5").string();
  fs::copy_file(good, truncated, fs::copy_options::overwrite_existing);
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  refuse(truncated, "truncated");
  // Corrupted: bytes flipped in the middle of the data.
  std::string corrupt = (kDir / "corrupt.h5").string();
  fs::copy_file(good, corrupt, fs::copy_options::overwrite_existing);
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(fs::file_size(corrupt) * 3 / 4));
    f.write("\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5", 8);
  }
  refuse(corrupt, "corrupted");
  // Foreign: not HDF5 at all, and an HDF5 file that is not a checkpoint.
  std::string text = (kDir / "foreign.h5").string();
  std::ofstream(text) << "not a checkpoint";
  refuse(text, "foreign");
  std::string model = (kDir / "model.h5").string();
  ASSERT_EQ(run_command(command("bad", 2, "--set train.out=" + model)).code, 0);
  refuse(model, "a model file");
  // Another model configuration: the message names the key.
  CommandResult r = run_command(command("bad", 8, "--resume " + good + " --set model.hidden=32"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("model.hidden"), std::string::npos) << r.output;
}
