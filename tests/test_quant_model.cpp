// `spectra quantize` end to end, through the CLI: on a FloatLM trained here on the embedded corpus
// (hidden 256), the held-out perplexity of the quantized model files orders as GPTQ's paper says
// it must, and every projection's layer error is below round-to-nearest's; bad input fails with
// one error line. (tests/python/test_quant_gptqmodel.py compares with GPTQModel itself.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/run_command.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir =
    fs::temp_directory_path() / ("spectra_quant_test-" + std::to_string(getpid()));
const std::string kBin = SPECTRA_BIN;
const std::string kCorpus = std::string(SPECTRA_SOURCE_DIR) + "/data/corpus/kjv.txt.gz";
const std::string kRecipe = std::string(SPECTRA_SOURCE_DIR) + "/recipes/tiny/floatlm-bpe.yaml";

std::string path(const std::string& name) { return (kDir / name).string(); }

void run_ok(const std::string& cmd) {
  CommandResult r = run_command(cmd);
  ASSERT_EQ(r.code, 0) << cmd << "\n" << r.output;
}

// A tokenizer (vocabulary 512) and the corpus prepared with it.
void prepare_data() {
  fs::remove_all(kDir);
  fs::create_directories(kDir);
  run_ok(kBin + " tokenizer train " + kCorpus + " -o " + path("tok.json") + " --vocab-size 512");
  run_ok(kBin + " prepare -q --tokenizer " + path("tok.json") + " -o " + path("kjv.h5") + " " +
         kCorpus);
}

// A FloatLM (or TriLM) of the given width trained for `steps` on the prepared corpus.
void train(const std::string& out, const std::string& kind, int hidden, int ffn, int steps) {
  run_ok(kBin + " train " + kRecipe + " --set model.kind=" + kind +
         " --set model.vocab_size=512 --set model.vocab_rows=512" + " --set model.hidden=" +
         std::to_string(hidden) + " --set model.ffn=" + std::to_string(ffn) +
         " --set model.layers=2 --set train.seq_len=64" +
         " --set train.micro_batch=16 --set train.global_batch=16 --set train.device=cpu" +
         " --set train.steps=" + std::to_string(steps) + " --set eval.sample_tokens=0" +
         " --set 'schedule.lr=[{start: 0.0, peak: 3.0e-3, shape: cosine, floor: 0.1}]'" +
         " --set eval.tasks=[] --set data.tokenizer=" + path("tok.json") +
         " --set data.datasets=" + path("kjv.h5") + " --set train.out=" + out);
}

// Held-out token perplexity (the tail the trainer validated on; never calibrated on).
double perplexity(const std::string& model) {
  const std::string out = model + ".eval.json";
  run_ok(kBin + " eval " + model + " --task perplexity --data " + path("kjv.h5") +
         " --no-progress -o " + out);
  return nlohmann::json::parse(std::ifstream(out))["results"][0]["metrics"]["token_perplexity"]
      .get<double>();
}

nlohmann::json quantize(const std::string& model, const std::string& method, int bits,
                        const std::string& out) {
  run_ok(kBin + " quantize " + model + " -o " + out + " --method " + method + " --bits " +
         std::to_string(bits) + " --calibration " + path("kjv.h5") +
         " --samples 64 --seq-len 128 --no-progress --report " + out + ".json");
  return nlohmann::json::parse(std::ifstream(out + ".json"));
}

}  // namespace

TEST(QuantCli, PerplexityAndLayerErrorsOrderAsGptqSays) {
  prepare_data();
  const std::string model = path("floatlm.h5");
  train(model, "floatlm", 256, 768, 300);
  const double base = perplexity(model);
  std::map<std::string, double> ppl;
  for (int bits : {8, 4, 3})
    for (const std::string method : {"gptq", "rtn"}) {
      const std::string name = method + std::to_string(bits);
      nlohmann::json report = quantize(model, method, bits, path(name + ".h5"));
      ppl[name] = perplexity(path(name + ".h5"));
      ASSERT_EQ(report["projections"].size(), 14u);  // 2 blocks x 7
      if (method == "gptq" && bits < 8)
        for (const auto& p : report["projections"])
          EXPECT_LT(p["error"].get<double>(), p["rtn_error"].get<double>())
              << name << " " << p["name"];
    }
  for (const auto& [name, p] : ppl) std::cout << name << " " << p << " (float " << base << ")\n";
  EXPECT_LT(std::abs(ppl["gptq8"] / base - 1), 0.005);
  EXPECT_LT(std::abs(ppl["rtn8"] / base - 1), 0.005);
  EXPECT_LT(ppl["gptq4"], ppl["rtn4"]);
  EXPECT_LT(ppl["gptq3"], ppl["rtn3"]);
  // Clearly at 3 bits: GPTQ loses at most 60% of what round-to-nearest loses.
  EXPECT_LT(ppl["gptq3"] - base, 0.6 * (ppl["rtn3"] - base));
  EXPECT_GT(ppl["rtn3"], ppl["rtn4"]);

  // The unpacked QuantLM is an ordinary model file: it generates and exports.
  run_ok(kBin + " generate " + path("gptq4.h5") + " --prompt 'And God said' --tokens 8");
  run_ok(kBin + " export " + path("gptq4.h5") + " -o " + path("hf4"));
}

TEST(QuantCli, BadInputFailsWithOneErrorLine) {
  prepare_data();
  train(path("narrow.h5"), "floatlm", 64, 128, 2);  // group size 128 does not divide 64
  train(path("trilm.h5"), "trilm", 128, 256, 2);
  train(path("float.h5"), "floatlm", 128, 256, 2);
  run_ok(kBin + " tokenizer train " + kCorpus + " -o " + path("other.json") + " --vocab-size 300");
  run_ok(kBin + " prepare -q --tokenizer " + path("other.json") + " -o " + path("other.h5") + " " +
         kCorpus);
  const std::string calib = " --calibration " + path("kjv.h5") + " --seq-len 64 --samples 8";
  const std::string q = kBin + " quantize ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {q + path("float.h5") + " -o x.h5 --bits 5" + calib, "--bits 5: QuantLMs have 3, 4, 6 or 8"},
      {q + path("narrow.h5") + " -o x.h5" + calib, "--group-size 128 does not divide"},
      {q + path("trilm.h5") + " -o x.h5" + calib, "a TriLM"},
      {q + path("float.h5") + " -o x.h5 --calibration " + path("other.h5"),
       "prepared with tokenizer sha256"},
      {q + path("float.h5") + " -o x.h5 --calibration " + path("kjv.h5") + " --samples 100000",
       "calibration samples need"},
      {q + path("float.h5") + " -o x.h5", "GPTQ needs calibration data"},
      {q + path("float.h5") + " -o x.h5 --calibration " + kCorpus, "give a prepared token file"},
      {q + path("float.h5") + " -o x.h5 --seq-len 4096 --calibration " + path("kjv.h5"),
       "longer than the model's context"},
      {q + path("missing.h5") + " -o x.h5" + calib, "missing.h5"},
  };
  for (const auto& [cmd, message] : cases) {
    CommandResult r = run_command(cmd);
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << cmd << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  EXPECT_FALSE(fs::exists("x.h5"));
  // A QuantLM recipe: its quantize section names the model, output and settings; flags override.
  // The model file must be the model the recipe describes.
  const std::string float_model =
      "\nmodel: {vocab_size: 512, vocab_rows: 512, hidden: 128, ffn: 256, layers: 2}";
  std::ofstream(path("other.yaml"))
      << "base: " << kRecipe << "\nquantize:\n  model: " << path("float.h5")
      << "\n  calibration: " << path("kjv.h5");
  CommandResult other = run_command(q + path("other.yaml") + " --method rtn -o " + path("no.h5"));
  EXPECT_EQ(other.code, 2) << other.output;
  EXPECT_NE(other.output.find("the file's model has model.vocab_size 512, the recipe 1024"),
            std::string::npos)
      << other.output;
  std::ofstream(path("q.yaml")) << "base: " << kRecipe << float_model
                                << "\nquantize:\n  model: " << path("float.h5")
                                << "\n  out: " << path("qr.h5")
                                << "\n  calibration: " << path("kjv.h5")
                                << "\n  bits: 3\n  samples: 8\n  seq_len: 64\n";
  CommandResult recipe = run_command(q + path("q.yaml") + " --method rtn --no-progress");
  ASSERT_EQ(recipe.code, 0) << recipe.output;
  EXPECT_NE(recipe.output.find("with rtn to 3 bits"), std::string::npos) << recipe.output;
  EXPECT_TRUE(fs::exists(path("qr.h5")));
  // A quantized model is not quantized again.
  run_ok(q + path("float.h5") + " -o " + path("q.h5") + calib);
  CommandResult r = run_command(q + path("q.h5") + " -o x.h5" + calib);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("already quantized"), std::string::npos) << r.output;
}
