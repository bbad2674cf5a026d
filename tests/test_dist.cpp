// Data and tensor parallelism under real `mpirun`: 2 and 4 ranks (dp 2 and 4, tp 2, tp 2 x dp 2),
// with ZeRO 0 to 3, overlapped or not, train the same model as one process (same losses for 5
// steps, same parameters after them, relative difference <= 1e-5 in f32), checkpoints resume across
// layouts, and impossible layouts fail before any work with one error line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include "tests/run_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "data/hdf5.h"
#include "kernels/ternary.h"

namespace {

std::string mpirun(int ranks) {
  return std::string(SPECTRA_MPIEXEC) + " --allow-run-as-root --oversubscribe -np " +
         std::to_string(ranks) + " ";
}

const std::filesystem::path kDir =
    std::filesystem::temp_directory_path() / ("spectra_dist_test-" + std::to_string(getpid()));

// Trains the tiny TriLM for 5 steps; returns the per-step losses, writes the model to `name`.h5.
std::vector<double> train(const std::string& launcher, const std::string& name,
                          const std::string& extra, const std::string& kind = "trilm") {
  std::filesystem::create_directories(kDir);
  std::string metrics = (kDir / (name + ".jsonl")).string(),
              model = (kDir / (name + ".h5")).string();
  if (extra.find("--resume") == std::string::npos) std::filesystem::remove(metrics);
  CommandResult r = run_command(
      launcher + SPECTRA_BIN + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/" + kind + ".yaml" +
      " --set model.hidden=64 --set model.ffn=128 --set model.layers=2 --set train.seq_len=32" +
      " --set train.micro_batch=4 --set train.global_batch=16 --set train.steps=5" +
      " --set log.interval=1 --set eval.batches=1 --set eval.sample_tokens=0" +
      " --set train.device=cpu --set log.metrics=" + metrics + " --set train.out=" + model + " " +
      extra);
  EXPECT_EQ(r.code, 0) << r.output;
  std::vector<double> losses;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "train") losses.push_back(j["loss"].get<double>());
  }
  return losses;
}

double max_param_rel_diff(const std::string& a, const std::string& b) {
  spectra::h5::File fa = spectra::h5::File::open_read((kDir / (a + ".h5")).string());
  spectra::h5::File fb = spectra::h5::File::open_read((kDir / (b + ".h5")).string());
  double worst = 0;
  for (const std::string& name : fa.list("params")) {
    std::vector<double> x = fa.read("params/" + name).to_doubles(),
                        y = fb.read("params/" + name).to_doubles();
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); i++) {
      num += (x[i] - y[i]) * (x[i] - y[i]);
      den += x[i] * x[i];
    }
    worst = std::max(worst, std::sqrt(num / den));
  }
  return worst;
}

// `name`'s losses (every step) and final parameters against run `ref_name`'s, within 1e-5
// relative; prints how far they are (γ is a sum over shards and reductions reassociate, so a
// layout need not equal one process to the bit).
void expect_matches(const std::string& name, const std::vector<double>& got,
                    const std::string& ref_name, const std::vector<double>& ref) {
  ASSERT_EQ(got.size(), ref.size()) << name;
  double worst = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    EXPECT_NEAR(got[i], ref[i], 1e-5 * ref[i]) << name << " step " << i + 1;
    worst = std::max(worst, std::abs(got[i] - ref[i]) / ref[i]);
  }
  const double params = max_param_rel_diff(name, ref_name);
  EXPECT_LE(params, 1e-5) << name;
  std::printf("%-26s vs %-10s losses within %.1e relative, parameters %.1e\n", name.c_str(),
              ref_name.c_str(), worst, params);
}

}  // namespace

// 0.01 MiB buckets: every block is a bucket of its own, so the model's four segments are
// reduced in four collectives, each launched from the backward pass (dp 2 also accumulates two
// micro-batches, which ZeRO-2 reduces one by one through its two-slot ring).
const std::string kSmallBuckets = " --set parallel.bucket_mb=0.01";

TEST(DataParallel, MatchesOneProcess) {
  std::vector<double> ref = train("", "ref", "");
  ASSERT_EQ(ref.size(), 5u);
  auto check = [&](int ranks, const std::string& name, const std::string& extra) {
    expect_matches(name, train(mpirun(ranks), name, extra), "ref", ref);
  };
  for (int ranks : {2, 4})
    for (int zero : {0, 1, 2})
      check(ranks, "dp" + std::to_string(ranks) + "z" + std::to_string(zero),
            "--set parallel.zero=" + std::to_string(zero) + kSmallBuckets);
  // One bucket (the default size for a model this small), and every collective blocking.
  check(2, "dp2z2_one_bucket", "--set parallel.zero=2");
  check(2, "dp2z2_blocking", "--set parallel.zero=2 --set parallel.overlap=false" + kSmallBuckets);
  check(4, "dp4z0_blocking", "--set parallel.overlap=false" + kSmallBuckets);
  // ZeRO-3: many buckets at dp 4; one bucket, blocking; with activation recomputation (the
  // backward pass unpacks the projections' codes again inside the recomputed blocks) and
  // accumulation over two micro-batches at dp 2.
  check(4, "dp4z3", "--set parallel.zero=3" + kSmallBuckets);
  check(2, "dp2z3_one_bucket_blocking", "--set parallel.zero=3 --set parallel.overlap=false");
  check(2, "dp2z3_recompute", "--set parallel.zero=3 --set train.recompute=full" + kSmallBuckets);
}

// ZeRO-3 gathers a FloatLM's weights in f32 (no codes): the same run as one process.
TEST(DataParallel, ZeroThreeFloatLMMatchesOneProcess) {
  std::vector<double> ref = train("", "float_ref", "", "floatlm");
  ASSERT_EQ(ref.size(), 5u);
  for (int ranks : {2, 4}) {
    const std::string name = "float_dp" + std::to_string(ranks) + "z3";
    expect_matches(name,
                   train(mpirun(ranks), name, "--set parallel.zero=3" + kSmallBuckets, "floatlm"),
                   "float_ref", ref);
  }
}

// A checkpoint holds the logical layout: one written by 2 ZeRO-2 ranks resumes in one process,
// the reverse (saving synchronously), and 4 ZeRO-2 ranks' in 2 ZeRO-1 ranks; the same with ZeRO-3
// (whose latent weights are shards), and ZeRO-1 into ZeRO-3; each continues the run that never
// stopped (up to f32 reassociation).
TEST(DataParallel, CheckpointsResumeUnderAnotherLayout) {
  std::vector<double> ref = train("", "ref", "");
  const std::string z1 = " --set parallel.zero=1", z2 = " --set parallel.zero=2" + kSmallBuckets;
  const std::string kSyncSave = " --set checkpoint.async=false";  // one run saves synchronously
  const std::string z3 = " --set parallel.zero=3" + kSmallBuckets;
  for (auto [first, second] : {std::pair{mpirun(2) + "|" + z2, std::string("|")},
                               {std::string("|"), mpirun(2) + "|" + z2 + kSyncSave},
                               {mpirun(4) + "|" + z2, mpirun(2) + "|" + z1},
                               {mpirun(2) + "|" + z3, std::string("|")},
                               {std::string("|"), mpirun(2) + "|" + z3 + kSyncSave},
                               {mpirun(4) + "|" + z3, mpirun(2) + "|" + z1},
                               {mpirun(2) + "|" + z1, mpirun(4) + "|" + z3}}) {
    std::string dir = (kDir / "ckpt").string();
    std::filesystem::remove_all(dir);
    std::string ck = " --set checkpoint.dir=" + dir;
    auto launcher = [](const std::string& s) { return s.substr(0, s.find('|')); };
    auto options = [](const std::string& s) { return s.substr(s.find('|') + 1); };
    train(launcher(first), "part", ck + options(first) + " --stop-at 3");
    std::vector<double> got =
        train(launcher(second), "part", ck + options(second) + " --resume auto");
    ASSERT_EQ(got.size(), 5u) << "metrics append: 3 steps, then 2";
    for (size_t i = 0; i < ref.size(); i++)
      EXPECT_NEAR(got[i], ref[i], 1e-5 * ref[i]) << "step " << i + 1;
    EXPECT_LE(max_param_rel_diff("part", "ref"), 1e-5);
  }
}

// Tensor parallelism (Megatron splits, per-shard TriLM scales) alone and with data parallelism,
// with and without ZeRO-1, trains what one process does when that process computes the same
// per-shard scales (model.ternary_shards=2).
TEST(TensorParallel, MatchesOneProcess) {
  const std::string shards = " --set model.ternary_shards=2";
  std::vector<double> ref = train("", "ref_s2", shards);
  ASSERT_EQ(ref.size(), 5u);
  for (auto [ranks, dp] : {std::pair{2, 1}, {4, 2}})
    for (int zero : {0, 1, 2, 3}) {
      if (dp == 1 && zero >= 2) continue;  // ZeRO over one replica is none
      std::string name = "tp2dp" + std::to_string(dp) + "z" + std::to_string(zero);
      expect_matches(
          name,
          train(mpirun(ranks), name,
                "--set parallel.tp=2 --set parallel.zero=" + std::to_string(zero) + kSmallBuckets),
          "ref_s2", ref);
    }
  // A FloatLM has no scales: tp=2 matches the plain single process.
  std::vector<double> fref = train("", "float_ref", "--set model.kind=floatlm");
  expect_matches("float_tp2",
                 train(mpirun(2), "float_tp2", "--set model.kind=floatlm --set parallel.tp=2"),
                 "float_ref", fref);
}

// SPECTRA.md: a TriLM trained with tp=2 has exactly 2 distinct nonzero magnitudes in each
// split projection once gathered (one γ per shard), where a single scale gives one.
TEST(TensorParallel, GatheredProjectionsHaveOneScalePerShard) {
  train(mpirun(2), "tp2", "--set parallel.tp=2");
  spectra::h5::File f = spectra::h5::File::open_read((kDir / "tp2.h5").string());
  int projections = 0;
  for (const std::string& name : f.list("params")) {
    if (name.find("_proj") == std::string::npos) continue;
    projections++;
    const bool row_parallel =
        name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
    spectra::Tensor w = f.read("params/" + name);
    auto magnitudes = [&](int64_t groups) {
      spectra::Tensor e = spectra::Tensor::empty(w.shape());
      spectra::Tensor gamma = spectra::Tensor::empty({groups});
      spectra::kernels::ternary_quantize_groups(w, 1e-5f, groups, row_parallel ? 1 : 0, e, gamma);
      std::set<double> m;
      for (double x : e.to_doubles())
        if (x != 0) m.insert(std::abs(x));
      return m.size();
    };
    EXPECT_EQ(magnitudes(2), 2u) << name;
    EXPECT_EQ(magnitudes(1), 1u) << name;
  }
  EXPECT_EQ(projections, 2 * 7);
}

// Checkpoints hold full tensors: one written under tp=2 resumes in one process and the reverse,
// and one written by tp 2 x dp 2 with ZeRO-1 (moments gathered over dp, then tp) in one process.
TEST(TensorParallel, CheckpointsResumeAcrossTensorParallelLayouts) {
  const std::string shards = " --set model.ternary_shards=2";
  std::vector<double> ref = train("", "ref_s2", shards);
  const std::string tp2 = mpirun(2) + "|--set parallel.tp=2",
                    tp2dp2 = mpirun(4) + "|--set parallel.tp=2 --set parallel.zero=1", one = "|";
  for (auto [first, second] : {std::pair{tp2, one}, {one, tp2}, {tp2dp2, one}}) {
    const std::string dir = (kDir / "tp_ckpt").string();
    std::filesystem::remove_all(dir);
    auto run = [&](const std::string& layout, const std::string& extra) {
      const size_t bar = layout.find('|');
      return train(layout.substr(0, bar), "tp_part",
                   layout.substr(bar + 1) + " --set checkpoint.dir=" + dir + shards + extra);
    };
    run(first, " --stop-at 3");
    std::vector<double> got = run(second, " --resume auto");
    ASSERT_EQ(got.size(), 5u) << first << " -> " << second;
    for (size_t i = 0; i < ref.size(); i++)
      EXPECT_NEAR(got[i], ref[i], 1e-5 * ref[i]) << first << " -> " << second << " step " << i + 1;
    EXPECT_LE(max_param_rel_diff("tp_part", "ref_s2"), 1e-5) << first << " -> " << second;
  }
}

// eval.tasks under tensor parallelism (the head's logits are split over the vocabulary: the
// scorer gathers the rows it scores) give one process's scores, at tp 2 and tp 2 x dp 2.
TEST(TensorParallel, EvalTasksScoreAsOneProcess) {
  const std::string tok = (kDir / "tok.json").string(), data = (kDir / "kjv.h5").string();
  std::filesystem::create_directories(kDir);
  const std::string corpus = std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz";
  ASSERT_EQ(run_command(std::string(SPECTRA_BIN) + " tokenizer train " + corpus +
                        " --vocab-size 512 -o " + tok)
                .code,
            0);
  ASSERT_EQ(run_command(std::string(SPECTRA_BIN) + " prepare -q --tokenizer " + tok + " -o " +
                        data + " " + corpus)
                .code,
            0);
  auto scores = [&](const std::string& launcher, const std::string& name,
                    const std::string& extra) {
    const std::string metrics = (kDir / (name + ".jsonl")).string();
    std::filesystem::remove(metrics);
    CommandResult r = run_command(
        launcher + SPECTRA_BIN + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/trilm-bpe.yaml" +
        " --set model.vocab_size=512 --set model.vocab_rows=512 --set model.hidden=64" +
        " --set model.ffn=128 --set model.layers=2 --set train.seq_len=32" +
        " --set train.micro_batch=4 --set train.global_batch=8 --set train.steps=3" +
        " --set eval.batches=1 --set eval.sample_tokens=0 --set train.device=cpu" +
        " --set data.tokenizer=" + tok + " --set data.datasets=[" + data + "]" +
        " --set log.metrics=" + metrics + " " + extra);
    EXPECT_EQ(r.code, 0) << r.output;
    std::map<std::string, double> out;
    std::ifstream in(metrics);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j["event"] != "eval_task") continue;
      for (auto& [key, value] : j.items())
        if (value.is_number_float()) out[j["task"].get<std::string>() + " " + key] = value;
    }
    return out;
  };
  const std::string model = (kDir / "eval_ref.h5").string();
  const auto ref = scores("", "eval_ref", "--set model.ternary_shards=2 --set train.out=" + model);
  ASSERT_GE(ref.size(), 4u);  // lambada, hellaswag, arc_easy, winogrande: 7 metrics
  for (auto [ranks, layout] : {std::pair{2, std::string("--set parallel.tp=2")},
                               {4, std::string("--set parallel.tp=2 --set parallel.zero=1")}}) {
    const auto got = scores(mpirun(ranks), "eval_tp" + std::to_string(ranks), layout);
    ASSERT_EQ(got.size(), ref.size()) << layout;
    for (const auto& [key, want] : ref)
      EXPECT_NEAR(got.at(key), want, 1e-5 * std::abs(want)) << layout << ": " << key;
  }
  // `spectra eval` under mpirun splits the model file over its ranks (tensor parallel, the
  // model's per-shard scales): the same metrics as one process, reported once; triviaqa's
  // greedy generations (uncached under TP, the last row gathered) the same strings.
  std::map<std::string, std::vector<std::string>> generations;
  auto eval = [&](const std::string& launcher, const std::string& out) {
    const std::string tasks = std::string(SPECTRA_SOURCE_DIR) + "/data/tasks/";
    CommandResult r = run_command(
        launcher + SPECTRA_BIN + " eval " + model + " --task lambada --data " + tasks +
        "lambada_kjv.jsonl" + " --task crows_pairs_english --data " + tasks +
        "crows_pairs_kjv.jsonl --task mmlu_continuation --data " + tasks +
        "mmlu_kjv.jsonl --task triviaqa --data " + tasks + "triviaqa_kjv.jsonl --limit 12" +
        " --max-gen-toks 16 --weights latent --no-progress -o " + out + " --samples " + out + "l");
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 8) << r.output;  // one table
    std::ifstream samples(out + "l");
    for (std::string line; std::getline(samples, line);)
      if (auto j = nlohmann::json::parse(line); j.contains("generation"))
        generations[out].push_back(j["generation"]);
    std::ifstream in(out);
    return nlohmann::json::parse(in)["results"];
  };
  // A layout the model cannot take, a task file that is not there: one error line, from one
  // rank.
  const std::string lambada = std::string(SPECTRA_SOURCE_DIR) + "/data/tasks/lambada_kjv.jsonl";
  for (auto [launcher, data, expect] :
       {std::tuple{mpirun(4), lambada, std::string("cannot split this model over 4 ranks")},
        {mpirun(2), (kDir / "none.jsonl").string(), std::string("none.jsonl: cannot open")}}) {
    CommandResult bad = run_command(launcher + SPECTRA_BIN + " eval " + model +
                                    " --task lambada --data " + data + " --no-progress");
    EXPECT_EQ(bad.code, 2) << bad.output;
    EXPECT_NE(bad.output.find(expect), std::string::npos) << bad.output;
    size_t errors = 0;
    for (size_t p = bad.output.find("error:"); p != std::string::npos;
         p = bad.output.find("error:", p + 1))
      errors++;
    EXPECT_EQ(errors, 1u) << bad.output;
  }
  const auto one = eval("", (kDir / "eval_one.json").string());
  const auto two = eval(mpirun(2), (kDir / "eval_two.json").string());
  ASSERT_EQ(one.size(), two.size());
  const auto& generated = generations[(kDir / "eval_one.json").string()];
  EXPECT_EQ(generated.size(), 12u);
  EXPECT_EQ(generations[(kDir / "eval_two.json").string()], generated);
  EXPECT_GT(std::set<std::string>(generated.begin(), generated.end()).size(), 1u);
  for (size_t t = 0; t < one.size(); t++)
    for (auto& [metric, want] : one[t]["metrics"].items())
      EXPECT_NEAR(two[t]["metrics"][metric].get<double>(), want.get<double>(),
                  1e-5 * std::abs(want.get<double>()))
          << one[t]["task"] << " " << metric;
}

TEST(DataParallel, ImpossibleLayoutsFailWithOneLine) {
  std::string recipe = std::string(SPECTRA_SOURCE_DIR) + "/recipes/tiny/trilm.yaml";
  for (std::string bad : {"--set parallel.tp=3", "--set parallel.tp=4", "--set parallel.dp=3",
                          "--set train.global_batch=24"}) {
    CommandResult r = run_command(mpirun(2) + SPECTRA_BIN + " train " + recipe + " " + bad);
    EXPECT_NE(r.code, 0) << bad;
    size_t errors = 0;
    for (size_t p = r.output.find("error:"); p != std::string::npos;
         p = r.output.find("error:", p + 1))
      errors++;
    EXPECT_EQ(errors, 1u) << bad << "\n" << r.output;
  }
}

// The collective counters (dist::Traffic) through `spectra bench --data-parallel`: per step, a
// rank (the mean over ranks) all-reduces 4 bytes per parameter under ZeRO-0 (f32 gradients), and
// under ZeRO-1/2 reduce-scatters 4 bytes per parameter and all-gathers its own part of the f32
// weights (1/dp of them), besides a few bytes of gradient norm.
TEST(DataParallel, CollectiveBytesPerStep) {
  for (int ranks : {2, 4})
    for (int zero : {0, 1, 2}) {
      SCOPED_TRACE(::testing::Message() << "dp " << ranks << " zero " << zero);
      CommandResult r = run_command(
          mpirun(ranks) + SPECTRA_BIN + " bench " + SPECTRA_SOURCE_DIR +
          "/recipes/tiny/trilm.yaml --data-parallel --steps 1 --warmup 1 --json" +
          " --set model.hidden=64 --set model.ffn=128 --set model.layers=2" +
          " --set train.seq_len=32 --set train.micro_batch=2 --set train.global_batch=" +
          std::to_string(2 * ranks) + " --set parallel.bucket_mb=0.01 --set train.device=cpu" +
          " --set parallel.zero=" + std::to_string(zero));
      ASSERT_EQ(r.code, 0) << r.output;
      const size_t at = r.output.find("json: ");
      ASSERT_NE(at, std::string::npos) << r.output;
      const auto j =
          nlohmann::json::parse(r.output.substr(at + 6, r.output.find('\n', at) - at - 6));
      const double params = j["parameters"].get<double>();
      const auto& b = j["bytes_per_step"];
      if (zero == 0) {
        EXPECT_EQ(b["all_reduce"].get<double>(), 4 * params);
        EXPECT_EQ(b["reduce_scatter"].get<double>(), 0);
        EXPECT_EQ(b["all_gather"].get<double>(), 0);
      } else {
        EXPECT_EQ(b["reduce_scatter"].get<double>(), 4 * params);
        EXPECT_NEAR(b["all_gather"].get<double>(), 4 * params / ranks, 4 * 8 * ranks);
        EXPECT_LT(b["all_reduce"].get<double>(), 64);  // the gradient norm's partial sums
      }
    }
}

// ZeRO-3 all-gathers the TriLM projections as 2-bit codes (rows of 256 and 512 columns: exactly
// 2 bits a weight) and the other parameters in f32: a rank's part of both per step on average,
// plus the γ table's sums (8 bytes per scale block); the gradients are reduce-scattered as under
// ZeRO-2 (4 bytes per parameter); and the codes every rank rebuilt are one process's, bit for bit
// (the bench's self-check).
TEST(DataParallel, ZeroThreeGathersTwoBitCodes) {
  const int64_t hidden = 256, ffn = 512, layers = 2;
  const double ternary = double(layers * (4 * hidden * hidden + 3 * hidden * ffn));
  for (int ranks : {2, 4}) {
    SCOPED_TRACE(::testing::Message() << "dp " << ranks);
    CommandResult r =
        run_command(mpirun(ranks) + SPECTRA_BIN + " bench " + SPECTRA_SOURCE_DIR +
                    "/recipes/tiny/trilm.yaml --data-parallel --steps 1 --warmup 1 --json" +
                    fmt::format(" --set model.hidden={} --set model.ffn={} --set model.layers={}",
                                hidden, ffn, layers) +
                    " --set train.seq_len=16 --set train.micro_batch=1 --set train.global_batch=" +
                    std::to_string(ranks) + " --set parallel.bucket_mb=0.5 --set train.device=cpu" +
                    " --set parallel.zero=3");
    ASSERT_EQ(r.code, 0) << r.output;
    const size_t at = r.output.find("json: ");
    ASSERT_NE(at, std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(r.output.substr(at + 6, r.output.find('\n', at) - at - 6));
    const double params = j["parameters"].get<double>(), floats = params - ternary;
    const auto& w = j["zero3_weights"];
    EXPECT_EQ(w["ternary_parameters"].get<double>(), ternary);
    EXPECT_EQ(w["code_bytes"].get<double>(), ternary / 4);  // 2 bits a weight
    EXPECT_EQ(w["float_bytes"].get<double>(), 4 * floats);
    const auto& b = j["bytes_per_step"];
    EXPECT_EQ(b["reduce_scatter"].get<double>(), 4 * params);
    const double gamma_sums = 8.0 * 7 * layers;
    EXPECT_DOUBLE_EQ(b["all_gather"].get<double>(), (4 * floats + ternary / 4) / ranks + gamma_sums)
        << r.output;
    EXPECT_LT(b["all_reduce"].get<double>(), 64);  // the gradient norm's partial sums
    // After the steps every rank holds the same codes and γ, and they are one process's packing
    // of the latent weights (γ summed over the ranks' shards agrees here to the last bit).
    EXPECT_TRUE(w["ranks_agree"].get<bool>());
    EXPECT_EQ(w["projections"].get<int64_t>(), 7 * layers);
    EXPECT_EQ(w["gamma_equal"].get<int64_t>(), 7 * layers);
    EXPECT_EQ(w["codes_equal"].get<int64_t>(), 7 * layers);
  }
}

// A rank that stops answering (SIGSTOP), dies (SIGKILL) or throws inside a collective (injected,
// under ZeRO-3) in the middle of training ends the whole job, never a hang: the hang through
// parallel.timeout_s (dist/watchdog.h) with one error line from a waiting rank naming the stopped
// one (dist/roll_call.h), the death through mpirun, the throw through MPI_Abort with the
// thrower's line naming its rank and step. No rank is left running, and the last checkpoint
// resumes to the end.
TEST(DataParallel, AFailingRankEndsTheJob) {
  for (const std::string signal : {"STOP", "KILL", "THROW"})
    for (int ranks : {2, 4}) {
      SCOPED_TRACE(::testing::Message() << "SIG" << signal << ", " << ranks << " ranks");
      const std::string dir = (kDir / ("fail-" + signal + std::to_string(ranks))).string();
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      const std::string args =
          std::string(SPECTRA_SOURCE_DIR) + "/recipes/tiny/trilm.yaml" +
          " --set train.device=cpu --set train.steps=3000" +
          " --set train.global_batch=" + std::to_string(16 * ranks) +
          " --set parallel.timeout_s=5 --set checkpoint.interval=5 --set log.interval=1" +
          " --set eval.sample_tokens=0 --set checkpoint.dir=" + dir + "/ck --set train.out=" + dir +
          "/m.h5 --set log.metrics=" + dir + "/m.jsonl" +
          (signal == "THROW" ? " --set parallel.zero=3" : "");
      // The last rank gets the signal 2 s after the first checkpoint is written (or throws in
      // step 12, after the checkpoints of steps 5 and 10); the script prints how long the job took
      // to end after that (after the thrower's error line, since steps 6 to 12 before it take as
      // long as the machine makes them) and whether any of its processes is left.
      const std::string inject =
          signal == "THROW"
              ? "-x SPECTRA_TEST_THROW_IN_COLLECTIVE=" + std::to_string(ranks - 1) + ":12 "
              : "";
      const std::string script =
          mpirun(ranks) + inject + SPECTRA_BIN + " train " + args + " > " + dir +
          "/log 2>&1 & m=$!\n" + "for i in $(seq 120); do ls " + dir +
          "/ck/step-*.h5 >/dev/null 2>&1 && break; sleep 0.5; done\n" + "sleep 2\n" +
          "for p in $(pgrep -f 'checkpoint.dir=" + dir + "/ck'); do\n" +
          "  tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=" +
          std::to_string(ranks - 1) + " && kill -" + (signal == "THROW" ? "0" : signal) + " $p\n" +
          "done\n" +
          (signal == "THROW" ? "while kill -0 $m 2>/dev/null && ! grep -q 'injected failure' " +
                                   dir + "/log; do sleep 0.2; done\n"
                             : "") +
          "t=$(date +%s); wait $m; echo \"rc=$? after $(($(date +%s) - t)) s\"\n" +
          "pgrep -f 'checkpoint.dir=" + dir + "/ck' >/dev/null && echo LEFT || echo none left\n";
      std::ofstream(dir + "/run.sh") << script;
      CommandResult r = run_command("bash " + dir + "/run.sh");
      std::ifstream log_in(dir + "/log");
      const std::string log((std::istreambuf_iterator<char>(log_in)), {});
      EXPECT_NE(r.output.find("none left"), std::string::npos) << r.output << log;
      EXPECT_EQ(r.output.find("rc=0 "), std::string::npos) << r.output << log;
      const size_t after = r.output.find(" after ");
      ASSERT_NE(after, std::string::npos) << r.output;
      EXPECT_LE(std::stoi(r.output.substr(after + 7)), 5 + 20) << r.output << log;
      if (signal == "STOP") {  // a waiting rank's own line, naming the stopped one
        EXPECT_NE(log.find("waited 5 s in "), std::string::npos) << log;
        EXPECT_NE(log.find("(parallel.timeout_s)"), std::string::npos) << log;
        EXPECT_NE(log.find(fmt::format("rank {} does not answer", ranks - 1)), std::string::npos)
            << log;
      }
      if (signal == "THROW")  // the thrower's line
        EXPECT_NE(log.find(fmt::format(
                      "error: rank {}: step 12: internal failure: injected failure", ranks - 1)),
                  std::string::npos)
            << log;
      // The newest checkpoint verifies and resumes; once, its 5 more steps are compared with an
      // uninterrupted run's.
      int64_t last = -1;
      for (const auto& e : std::filesystem::directory_iterator(dir + "/ck"))
        if (e.path().extension() == ".h5" && e.path().filename().string().starts_with("step-"))
          last = std::max<int64_t>(last, std::stoll(e.path().filename().string().substr(5, 8)));
      ASSERT_GT(last, 0) << log;
      const std::string newest = dir + fmt::format("/ck/step-{:08}.h5", last);
      CommandResult verify = run_command(std::string(SPECTRA_BIN) + " inspect " + newest);
      EXPECT_EQ(verify.code, 0) << verify.output;
      const std::string more = " --stop-at " + std::to_string(last + 5);  // the same schedule
      CommandResult resume =
          run_command(mpirun(ranks) + SPECTRA_BIN + " train " + args + more + " --resume auto");
      ASSERT_EQ(resume.code, 0) << resume.output;
      if (signal != "KILL" || ranks != 2) continue;  // the comparison once: it reruns the start
      std::string whole = args;
      for (const std::string key : {"checkpoint.dir=", "train.out=", "log.metrics="})
        whole.replace(whole.find(key) + key.size(), dir.size(), dir + "/whole");
      std::filesystem::create_directories(dir + "/whole");
      ASSERT_EQ(run_command(mpirun(ranks) + SPECTRA_BIN + " train " + whole + more).code, 0);
      auto last_losses = [](const std::string& metrics) {
        std::vector<double> losses;
        std::ifstream in(metrics);
        for (std::string line; std::getline(in, line);) {
          auto j = nlohmann::json::parse(line);
          if (j["event"] == "train") losses.push_back(j["loss"].get<double>());
        }
        return std::vector<double>(losses.end() - std::min<size_t>(5, losses.size()), losses.end());
      };
      const std::vector<double> got = last_losses(dir + "/m.jsonl"),
                                ref = last_losses(dir + "/whole/m.jsonl");
      ASSERT_EQ(got.size(), 5u);
      for (size_t i = 0; i < got.size(); i++) EXPECT_NEAR(got[i], ref[i], 1e-5 * ref[i]) << i;
    }
}
