// Evaluation and inference: lm-eval's request building (rolling windows, encode_pair), the
// key/value cache against the full forward pass, cached against uncached greedy generation across
// context shifts, `spectra eval --task perplexity` against the trainer's validation loss on the
// same windows, and bad task files refused with one error line. (tests/python/test_eval_lmeval.py
// compares every task with lm-evaluation-harness itself.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "data/token_file.h"
#include "eval/evaluate.h"
#include "eval/generate.h"
#include "eval/generate_until.h"
#include "eval/loglikelihood.h"
#include "layers/kv_cache.h"
#include "tests/run_command.h"

namespace fs = std::filesystem;
using namespace spectra;

namespace {

const fs::path kDir = fs::temp_directory_path() / ("spectra_eval_test-" + std::to_string(getpid()));
const std::string kBin = SPECTRA_BIN;
const std::string kCorpus = std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz";

// lm-eval's get_rolling_token_windows(context_len=1) + make_disjoint_window, transliterated.
std::vector<LoglikelihoodRequest> reference_windows(const std::vector<int32_t>& t, int32_t prefix,
                                                    int64_t max_len) {
  std::vector<LoglikelihoodRequest> out;
  if (t.empty()) return out;
  auto slice = [&](int64_t a, int64_t b) {
    return std::vector<int32_t>(t.begin() + a, t.begin() + b);
  };
  const int64_t n = int64_t(t.size()), first = std::min(max_len, n);
  std::vector<int32_t> a = {prefix};
  for (int32_t x : slice(0, first - 1)) a.push_back(x);
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> windows = {
      {a, slice(0, first)}};
  for (int64_t predicted = first; predicted < n;) {
    const int64_t len = std::min(n - predicted, max_len), end = predicted + len;
    windows.push_back({slice(end - max_len - 1, end - 1), slice(end - len, end)});
    predicted += len;
  }
  for (auto& [in, pred] : windows)
    out.push_back({std::vector<int32_t>(in.begin(), in.end() - long(pred.size() - 1)), pred});
  return out;
}

TEST(Eval, RollingWindowsAreLmEvalsDisjointWindows) {
  for (int64_t n : {1, 5, 16, 17, 40, 64, 100}) {
    std::vector<int32_t> t;
    for (int64_t i = 0; i < n; i++) t.push_back(int32_t(10 + i));
    auto got = rolling_windows(t, 0, 16), want = reference_windows(t, 0, 16);
    ASSERT_EQ(got.size(), want.size()) << n;
    for (size_t i = 0; i < got.size(); i++) {
      EXPECT_EQ(got[i].context, want[i].context) << n << " window " << i;
      EXPECT_EQ(got[i].continuation, want[i].continuation) << n << " window " << i;
    }
  }
}

TEST(Eval, PythonStringHelpers) {
  EXPECT_EQ(py_strip(" \t a b \n\u00a0"), "a b");
  EXPECT_EQ(py_strip("  x  ", true, false), "x  ");
  EXPECT_EQ(py_capitalize("hELLO wORLD"), "Hello world");
  EXPECT_EQ(py_capitalize("élan"), "Élan");
  EXPECT_EQ(hellaswag_preprocess(" A [title] B [step] C   D "), "A. B C  D");
  EXPECT_EQ(hellaswag_preprocess("a [x\ny] b"), "a [x\ny] b");          // '.' stops at a newline
  EXPECT_EQ(py_lower("ÉLAN İ ΟΔΟΣ Σ ΣΑ."), "élan i\u0307 οδος σ σα.");  // final sigma, İ
}

// lm-eval's exact_match (ignore_case, ignore_punctuation) through numpy; each expectation was
// printed by numpy 2.4 running lm-eval's exact_match_hf_evaluate on the same strings.
TEST(Eval, ExactMatchNormalizesAsLmEval) {
  struct Case {
    std::string prediction;
    std::vector<std::string> answers;
    bool match;
  };
  const std::vector<Case> cases = {
      {"The LORD", {"the lord"}, true},
      {"the Lord.", {"(The LORD)"}, true},
      {"the lord ", {"the lord"}, false},  // spaces count (the filter strips before)
      {"Élan", {"élan"}, true},
      {"ΟΔΟΣ", {"οδος"}, true},  // final sigma
      {"ΟΔΟΣ", {"οδοσ"}, false},
      {"İstanbul", {"i\u0307stanbul"}, false},  // lower() grows; numpy cuts to the item size
      {"İ", {"i\u0307"}, false},
      {"ab", {"a-b", "x"}, true},
      {"", {""}, true},
      {"a\u2019b", {"a'b"}, false},  // only ASCII punctuation goes
      {"dog's", {"dogs"}, true},
  };
  for (const Case& c : cases)
    EXPECT_EQ(exact_match(c.prediction, c.answers), c.match) << c.prediction;
}

// A tiny random model; init_std large enough that greedy choices are far from ties.
std::unique_ptr<LM> tiny_model(ModelKind kind, int64_t context) {
  ModelConfig c;
  c.kind = kind;
  c.vocab_size = c.vocab_rows = 64;
  c.hidden = 32, c.ffn = 64, c.heads = 4, c.layers = 2, c.context = context;
  c.init_std = 0.3f;
  auto lm = std::make_unique<LM>(c, LayerOptions{DType::f32, Device::cpu()}, DType::f32);
  lm->initialize(7);
  return lm;
}

std::vector<int32_t> tokens(int64_t n, int seed) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < n; i++) t.push_back(int32_t((i * 17 + seed * 5 + i * i) % 64));
  return t;
}

TEST(Eval, CachedLogitsEqualTheFullForwardPass) {
  for (ModelKind kind : {ModelKind::floatlm, ModelKind::trilm}) {
    std::unique_ptr<LM> model = tiny_model(kind, 32);
    const LM& lm = *model;
    const std::vector<std::vector<int32_t>> seqs = {tokens(10, 1), tokens(7, 2), tokens(12, 3)};
    KVCache cache(lm.config(), 3, 32, DType::f32, Device::cpu());
    // Two ragged steps: prefixes of different lengths, then the rests (slot 1 sits out).
    const std::vector<std::vector<std::pair<int64_t, int64_t>>> steps = {{{0, 6}, {1, 7}, {2, 3}},
                                                                         {{0, 4}, {2, 9}}};
    std::vector<int64_t> done(3, 0);
    for (const auto& step : steps) {
      std::vector<int32_t> ids;
      std::vector<CacheSegment> segments;
      for (auto [slot, n] : step) {
        ids.insert(ids.end(), seqs[size_t(slot)].begin() + done[size_t(slot)],
                   seqs[size_t(slot)].begin() + done[size_t(slot)] + n);
        segments.push_back({slot, n});
      }
      std::vector<double> got =
          lm.logits_cached(Tensor::from(ids, {int64_t(ids.size())}), segments, cache).to_doubles();
      int64_t row = 0;
      for (auto [slot, n] : step) {
        const int64_t end = done[size_t(slot)] + n;
        std::vector<int32_t> prefix(seqs[size_t(slot)].begin(), seqs[size_t(slot)].begin() + end);
        std::vector<double> full =
            lm.logits(Tensor::from(prefix, {end}), 1, end).value().to_doubles();
        for (int64_t t = 0; t < n; t++)
          for (int64_t v = 0; v < 64; v++)
            ASSERT_NEAR(got[size_t((row + t) * 64 + v)],
                        full[size_t((done[size_t(slot)] + t) * 64 + v)], 2e-5)
                << model_kind_name(kind) << " slot " << slot << " position " << t;
        row += n;
        done[size_t(slot)] = end;
        EXPECT_EQ(cache.length(slot), end);
      }
    }
  }
}

TEST(Eval, GreedyGenerationIsTheSameWithAndWithoutTheCache) {
  std::unique_ptr<LM> model = tiny_model(ModelKind::trilm, 24);
  const LM& lm = *model;
  // Byte-level: ids are the prompt's bytes, below the 64-row vocabulary.
  const std::vector<std::string> prompts = {"+(/)%", "&'()*+,-./0123456789:;<=>?+", "!"};
  SampleOptions o;
  o.tokens = 70;  // crosses the 24-token context several times (shift to the newest 12)
  o.temperature = 0;
  std::vector<std::vector<int32_t>> with, without;
  for (bool cache : {true, false}) {
    o.cache = cache;
    auto& ids = cache ? with : without;
    ids.assign(prompts.size(), {});
    generate(lm, nullptr, prompts, o,
             [&](size_t i, const GeneratedToken& t) { ids[i].push_back(t.id); });
  }
  for (size_t i = 0; i < prompts.size(); i++) {
    EXPECT_EQ(with[i].size(), 70u);
    EXPECT_EQ(with[i], without[i]) << "prompt " << i;
  }
  // Batching does not change what a prompt generates, sampled or greedy.
  o.cache = true, o.temperature = 0.9, o.top_k = 0, o.batch = 1;
  std::vector<std::string> one = generate(lm, nullptr, prompts, o);
  o.batch = 3;
  EXPECT_EQ(generate(lm, nullptr, prompts, o), one);
}

// ---- through the CLI, on a model trained on the BPE-tokenized corpus --------------------------

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fs::remove_all(kDir);
    fs::create_directories(kDir);
    const std::string tok = (kDir / "tok.json").string();
    CommandResult t =
        run_command(kBin + " tokenizer train " + kCorpus + " -o " + tok + " --vocab-size 512");
    ASSERT_EQ(t.code, 0) << t.output;
    CommandResult p = run_command(kBin + " prepare -q --tokenizer " + tok + " -o " +
                                  (kDir / "kjv.h5").string() + " " + kCorpus);
    ASSERT_EQ(p.code, 0) << p.output;
    // A held-out split of a whole number of validation batches (4 windows each), so the
    // trainer's mean of batch means is the mean over every held-out token.
    int64_t windows = (TokenFile((kDir / "kjv.h5").string()).num_tokens() - 1) / 64;
    val_windows_ = 4 * (windows / 50 / 4);
    val_fraction_ = (double(val_windows_) + 0.5) / double(windows);
    ASSERT_EQ(validation_windows(windows, val_fraction_), val_windows_);
    CommandResult r = run_command(
        kBin + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/floatlm-bpe.yaml" +
        " --set model.vocab_size=512 --set model.vocab_rows=512 --set model.hidden=64" +
        " --set model.ffn=128 --set model.layers=2 --set train.seq_len=64" +
        " --set train.micro_batch=4 --set train.global_batch=4 --set train.device=cpu" +
        " --set train.steps=40 --set eval.sample_tokens=0 --set data.tokenizer=" + tok +
        " --set data.datasets=" + (kDir / "kjv.h5").string() +
        " --set data.val_fraction=" + fmt::format("{:.17g}", val_fraction_) +
        " --set eval.batches=" + std::to_string(val_windows_ / 4) +
        " --set log.metrics=" + (kDir / "m.jsonl").string() + " --set train.out=" + model());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static std::string model() { return (kDir / "model.h5").string(); }
  static inline int64_t val_windows_ = 0;
  static inline double val_fraction_ = 0;
};

TEST_F(EvalCli, TokenFilePerplexityIsTheTrainersValidationLoss) {
  double val_loss = 0;
  std::ifstream metrics(kDir / "m.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "eval") val_loss = j["val_loss"].get<double>();
  }
  ASSERT_GT(val_loss, 0);
  const std::string out = (kDir / "ppl.json").string();
  CommandResult r = run_command(kBin + " eval " + model() + " --task perplexity --data " +
                                (kDir / "kjv.h5").string() + " --no-progress -o " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(std::ifstream(out))["results"][0];
  EXPECT_EQ(j["docs"].get<int64_t>(), val_windows_);
  EXPECT_NEAR(j["metrics"]["token_perplexity"].get<double>(), std::exp(val_loss),
              1e-9 * std::exp(val_loss));
}

// A recipe's eval.tasks with few-shot examples score what `spectra eval --num-fewshot` scores on
// the model file the run writes (the same examples: lm-eval's draw, seed 1234).
TEST_F(EvalCli, RecipeFewShotTasksScoreAsSpectraEval) {
  const std::string tasks = std::string(SPECTRA_SOURCE_DIR) + "/data/tasks/";
  const std::string hellaswag = tasks + "hellaswag_kjv.jsonl",
                    lambada = tasks + "lambada_kjv.jsonl";
  const std::string out = (kDir / "fewshot.h5").string(), log = (kDir / "fewshot.jsonl").string();
  CommandResult t = run_command(
      kBin + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/floatlm-bpe.yaml" +
      " --set model.vocab_size=512 --set model.vocab_rows=512 --set model.hidden=64" +
      " --set model.ffn=128 --set model.layers=2 --set train.seq_len=64 --set train.steps=4" +
      " --set train.micro_batch=4 --set train.global_batch=4 --set train.device=cpu" +
      " --set eval.sample_tokens=0 --set eval.batches=1 --set data.tokenizer=" +
      (kDir / "tok.json").string() + " --set data.datasets=" + (kDir / "kjv.h5").string() +
      " --set log.metrics=" + log + " --set train.out=" + out +
      " \"--set=eval.tasks=[{task: hellaswag, data: " + hellaswag + ", limit: 16, num_fewshot: 3," +
      " fewshot_data: " + hellaswag + "}, {task: lambada, data: " + lambada +
      ", limit: 16, num_fewshot: 2}]\"");
  ASSERT_EQ(t.code, 0) << t.output;
  std::map<std::string, double> trained;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);)
    if (auto j = nlohmann::json::parse(line); j["event"] == "eval_task")
      for (const char* m : {"acc", "acc_norm", "perplexity"})
        if (j.contains(m)) trained[j["task"].get<std::string>() + " " + m] = j[m].get<double>();
  ASSERT_EQ(trained.size(), 4u);
  const std::string json = (kDir / "fewshot.json").string();
  CommandResult e = run_command(kBin + " eval " + out + " --task hellaswag --data " + hellaswag +
                                " --fewshot-data " + hellaswag + " --task lambada --data " +
                                lambada + " --fewshot-data " + lambada +
                                " --num-fewshot 3 --limit 16 --no-progress -o " + json);
  ASSERT_EQ(e.code, 0) << e.output;
  // lambada took 2 shots in the recipe, 3 here: its numbers must differ, hellaswag's agree.
  CommandResult e2 = run_command(kBin + " eval " + out + " --task lambada --data " + lambada +
                                 " --num-fewshot 2 --limit 16 --no-progress -o " + json + "2");
  ASSERT_EQ(e2.code, 0) << e2.output;
  std::map<std::string, double> evaluated;
  for (const std::string& f : {json, json + "2"}) {
    const nlohmann::json results = nlohmann::json::parse(std::ifstream(f))["results"];
    for (auto& r : results)
      for (auto& [m, v] : r["metrics"].items())
        evaluated[r["task"].get<std::string>() + " " + m + (f == json ? "" : " 2")] = v;
  }
  EXPECT_EQ(trained.at("hellaswag acc"), evaluated.at("hellaswag acc"));
  EXPECT_EQ(trained.at("hellaswag acc_norm"), evaluated.at("hellaswag acc_norm"));
  EXPECT_NEAR(trained.at("lambada perplexity"), evaluated.at("lambada perplexity 2"),
              1e-6 * evaluated.at("lambada perplexity 2"));
  EXPECT_NE(evaluated.at("lambada perplexity"), evaluated.at("lambada perplexity 2"));
}

TEST_F(EvalCli, BadTaskFilesFailWithOneErrorLine) {
  auto write = [](const std::string& name, const std::string& text) {
    std::ofstream(kDir / name) << text;
    return (kDir / name).string();
  };
  const std::string good =
      R"({"context": "In the beginning", "choices": ["God", "man"], "gold": 0})";
  struct Case {
    std::string task, file, expect, extra = "";
  };
  const std::string tasks = std::string(SPECTRA_SOURCE_DIR) + "/data/tasks/";
  const std::string mmlu =
      R"({"question": "q", "subject": "theology", "choices": ["a"], "answer": 0})";
  const std::vector<Case> cases = {
      {"multiple_choice", (kDir / "missing.jsonl").string(), "missing.jsonl: cannot open"},
      {"multiple_choice", write("bad.jsonl", good + "\n{\"context\": \n"),
       "bad.jsonl:2: not a JSON"},
      {"multiple_choice",
       write("range.jsonl", good + "\n" + R"({"context": "a", "choices": ["b"], "gold": 3})"),
       "range.jsonl:2: the answer index 3 is out of range for 1 choices"},
      {"arc_easy", write("arc.jsonl", good + "\n"),
       "arc.jsonl:1: field \"choices\" is not an object"},
      {"winogrande",
       write("wino.jsonl",
             R"({"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"})"),
       "wino.jsonl:1: field \"sentence\" has no \"_\" blank"},
      {"piqa", write("empty.jsonl", "\n"), "empty.jsonl: no documents"},
      {"logiqa",
       write("logiqa.jsonl",
             R"({"label": "e", "context": "c", "question": "q", "options": ["a", "b"]})"),
       "logiqa.jsonl:1: label \"e\" is not a, b, c or d"},
      {"truthfulqa_mc1", write("truthful.jsonl", R"({"question": "q", "mc1_targets": ["a", "b"]})"),
       "truthful.jsonl:1: field \"mc1_targets\" is not an object with \"choices\""},
      {"crows_pairs_english", write("crows.jsonl", R"({"sent_more": "a"})"),
       "crows.jsonl:1: missing field \"sent_less\""},
      {"nonsense", write("x.jsonl", good), "unknown task 'nonsense'"},
      {"mmlu_continuation", write("mmlu.jsonl", mmlu),
       "mmlu.jsonl:1: \"theology\" is not one of MMLU's 57 subjects"},
      // Few-shot: more examples than the file holds (hellaswag also leaves the document out),
      // an example file missing where lm-eval draws from a training split, a count mismatch.
      {"lambada", tasks + "lambada_kjv.jsonl",
       "lambada_kjv.jsonl: --num-fewshot 61 for task 'lambada' draws 61 examples from this "
       "file's 60 documents",
       " --num-fewshot 61"},
      {"hellaswag", tasks + "hellaswag_kjv.jsonl",
       "draws 61 examples (the document itself is left out) from this file's 60",
       " --num-fewshot 60 --fewshot-data " + tasks + "hellaswag_kjv.jsonl"},
      {"mmlu_continuation", tasks + "mmlu_kjv.jsonl",
       "mmlu_dev_kjv.jsonl: --num-fewshot 6: subject 'abstract_algebra' has 5 examples",
       " --num-fewshot 6 --fewshot-data " + tasks + "mmlu_dev_kjv.jsonl"},
      {"arc_easy", tasks + "arc_kjv.jsonl",
       "task 'arc_easy' takes its examples from the dataset's train split", " --num-fewshot 1"},
      {"triviaqa", write("trivia.jsonl", R"({"question": "q", "answer": {"value": "a"}})"),
       "trivia.jsonl:1: field \"answer\" is not an object with \"aliases\""},
      {"triviaqa", tasks + "triviaqa_kjv.jsonl", "--max-gen-toks 100000 leaves no room",
       " --max-gen-toks 100000"},
      {"arc_easy", tasks + "arc_kjv.jsonl", "one --fewshot-data FILE per --task (1 tasks, 2",
       " --num-fewshot 1 --fewshot-data a.jsonl --fewshot-data b.jsonl"},
  };
  for (const Case& c : cases) {
    CommandResult r = run_command(kBin + " eval " + model() + " --task " + c.task + " --data " +
                                  c.file + c.extra + " --no-progress");
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.expect << "\n" << r.output;
  }
  // A recipe whose eval.tasks would generate past the model's context: refused before training.
  CommandResult gen = run_command(
      kBin + " train " + SPECTRA_SOURCE_DIR +
      "/recipes/tiny/floatlm-bpe.yaml --set data.tokenizer=" + (kDir / "tok.json").string() +
      " --set data.datasets=" + (kDir / "kjv.h5").string() +
      " --set model.vocab_size=512 --set model.vocab_rows=512 --set train.device=cpu" +
      " \"--set=eval.tasks=[{task: triviaqa, data: " + tasks + "triviaqa_kjv.jsonl}]\"");
  EXPECT_EQ(gen.code, 2) << gen.output;
  EXPECT_EQ(std::count(gen.output.begin(), gen.output.end(), '\n'), 1) << gen.output;
  EXPECT_NE(gen.output.find("triviaqa generates up to 256 tokens after its prompt"),
            std::string::npos)
      << gen.output;
  // The suite's folder without some of its files: one line naming them.
  fs::create_directories(kDir / "suite");
  for (const char* task : {"arc_easy", "hellaswag"})
    fs::copy_file(tasks + (std::string(task) == "arc_easy" ? "arc" : task) + "_kjv.jsonl",
                  kDir / "suite" / (std::string(task) + ".jsonl"),
                  fs::copy_options::overwrite_existing);
  for (const std::string& extra : {std::string(""), std::string(" --num-fewshot 1")}) {
    CommandResult r = run_command(kBin + " eval " + model() + " --suite spectra --data-dir " +
                                  (kDir / "suite").string() + extra + " --no-progress");
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    for (const char* needed : {"the spectra suite needs ", "arc_challenge.jsonl, ", "boolq.jsonl, ",
                               "truthfulqa_mc1.jsonl there"})
      EXPECT_NE(r.output.find(needed), std::string::npos) << needed << "\n" << r.output;
    EXPECT_EQ(r.output.find("hellaswag.jsonl"), std::string::npos) << r.output;  // it is there
    // With examples: each task's split of them too (hellaswag's from its training split).
    EXPECT_EQ(r.output.find("hellaswag.train.jsonl") != std::string::npos, !extra.empty())
        << r.output;
  }
  // A tokenizer other than the model's, for a task file or a token file prepared with it.
  const std::string other = (kDir / "other.json").string();
  ASSERT_EQ(
      run_command(kBin + " tokenizer train " + kCorpus + " -o " + other + " --vocab-size 300").code,
      0);
  CommandResult r = run_command(kBin + " eval " + model() + " --tokenizer " + other +
                                " --task multiple_choice --data " + write("ok.jsonl", good));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("other.json: this tokenizer"), std::string::npos) << r.output;
  ASSERT_EQ(run_command(kBin + " prepare -q --tokenizer " + other + " -o " +
                        (kDir / "other.h5").string() + " " + kCorpus)
                .code,
            0);
  r = run_command(kBin + " eval " + model() + " --task perplexity --data " +
                  (kDir / "other.h5").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("other.h5: prepared with tokenizer sha256"), std::string::npos)
      << r.output;
}

// spectra eval and generate run a TriLM on its packed weights by default: the scores (and greedy
// text) equal those of its latent weights, task by task; int8 activations run; a FloatLM has
// nothing to pack.
TEST_F(EvalCli, PackedTriLMScoresEqualTheLatentWeights) {
  const std::string trilm = (kDir / "trilm.h5").string(), tok = (kDir / "tok.json").string();
  CommandResult t = run_command(
      kBin + " train " + SPECTRA_SOURCE_DIR + "/recipes/tiny/trilm-bpe.yaml" +
      " --set model.vocab_size=512 --set model.vocab_rows=512 --set model.hidden=96" +
      " --set model.ffn=160 --set model.heads=2 --set model.layers=2 --set train.seq_len=64" +
      " --set train.micro_batch=4 --set train.global_batch=4 --set train.device=cpu" +
      " --set train.steps=30 --set eval.sample_tokens=0 --set eval.tasks=[] --set data.tokenizer=" +
      tok + " --set data.datasets=" + (kDir / "kjv.h5").string() + " --set train.out=" + trilm);
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string tasks = std::string(SPECTRA_SOURCE_DIR) + "/data/tasks/";
  auto eval = [&](const std::string& flags) {
    const std::string out = (kDir / "packed.json").string();
    CommandResult r =
        run_command(kBin + " eval " + trilm + " " + flags + " --task hellaswag --data " + tasks +
                    "hellaswag_kjv.jsonl" + " --task lambada --data " + tasks +
                    "lambada_kjv.jsonl" + " --task perplexity --data " +
                    (kDir / "kjv.h5").string() + " --limit 24 --no-progress -o " + out);
    EXPECT_EQ(r.code, 0) << r.output;
    std::map<std::string, double> metrics;
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(out));
    for (auto& task : j["results"])
      for (auto& [name, value] : task["metrics"].items())
        metrics[task["task"].get<std::string>() + " " + name] = value.get<double>();
    return metrics;
  };
  const auto latent = eval("--weights latent"), packed = eval(""),
             int8 = eval("--activations int8");
  ASSERT_EQ(packed.size(), latent.size());
  ASSERT_GE(latent.size(), 5u);
  for (const auto& [name, want] : latent) {
    if (name.find(" acc") != std::string::npos)
      EXPECT_EQ(packed.at(name), want) << name;
    else
      EXPECT_NEAR(packed.at(name), want, 1e-5 * std::abs(want)) << name;
    std::printf("%-36s latent %12.6f  packed %12.6f  packed int8 %12.6f\n", name.c_str(), want,
                packed.at(name), int8.at(name));
  }
  // Greedy text: the default (packed) with exact activations, and the latent weights.
  auto text = [&](const std::string& flags) {
    CommandResult r = run_command(kBin + " generate " + trilm + " " + flags +
                                  " --prompt 'And God said' -n 64 --temperature 0");
    EXPECT_EQ(r.code, 0) << r.output;
    return r.output;
  };
  EXPECT_EQ(text("--activations exact"), text("--weights latent"));
  CommandResult r = run_command(kBin + " generate " + model() + " --weights packed -n 2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("a FloatLM has no ternary weights to pack"), std::string::npos)
      << r.output;
}

}  // namespace
