// Writes the seed corpora of the fuzz harnesses into DIR/<reader>/ (scripts/fuzz): real files
// of each format, written by spectra's own writers from the shipped recipes and corpus, so the
// fuzzer starts from inputs that reach deep into each reader.
#include <filesystem>
#include <fstream>

#include "data/bpe_train.h"
#include "data/text.h"
#include "data/token_file.h"
#include "readers.h"
#include "tools/safetensors.h"
#include "train/checkpoint.h"
#include "train/model_file.h"

namespace fs = std::filesystem;
using namespace spectra;

namespace {
void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A tokenizer.json trained on the start of the shipped corpus.
std::string tokenizer_json(int64_t vocab, std::vector<std::string> specials) {
  BpeTrainer t({.vocab_size = vocab, .special_tokens = specials});
  t.add_text(read_text_file(SPECTRA_SOURCE_DIR "/data/corpus/kjv.txt.gz").substr(0, 100000));
  return t.train();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  log::set_quiet(true);
  const fs::path out = argv[1];
  // tokenizer.json: small vocabularies keep the inputs short (the fuzzer mutates every byte).
  const std::string tok = tokenizer_json(300, {"<|endoftext|>"});
  write(out / "tokenizer/bpe300.json", tok);
  write(out / "tokenizer/bpe270-specials.json",
        tokenizer_json(270, {"<|endoftext|>", "<|pad|>", "<mask>"}));

  // Recipes: every shipped file as written, and its resolved text (what model files store).
  for (const auto& e : fs::recursive_directory_iterator(SPECTRA_SOURCE_DIR "/recipes")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string name = fs::relative(e.path(), SPECTRA_SOURCE_DIR "/recipes").string();
    std::string flat = name;
    std::replace(flat.begin(), flat.end(), '/', '_');
    write(out / "recipe" / flat, read_text_file(e.path().string()));
    try {
      write(out / "recipe" / ("resolved_" + flat), load_recipe(e.path().string()).text);
    } catch (const Error&) {  // names a file that is not here (the GPT-NeoX tokenizer)
    }
  }

  // Token files: u16 (small vocabulary) and u32.
  fs::create_directories(out / "token_file");
  TokenFileMeta meta;
  meta.vocab_size = 300;
  meta.eot_id = 0;
  meta.num_documents = 3;
  meta.num_tokens = 12;
  meta.text_bytes = 40;
  meta.sources = R"(["a.txt"])";
  std::vector<uint32_t> tokens = {5, 6, 7, 0, 8, 9, 0, 10, 11, 12, 13, 0};
  write_token_file((out / "token_file/u16.h5").string(), tokens, {0, 4, 7, 12}, meta);
  meta.vocab_size = 70000;
  tokens[1] = 69999;
  write_token_file((out / "token_file/u32.h5").string(), tokens, {0, 4, 7, 12}, meta);

  // A model file and a checkpoint of the harnesses' tiny model; a model file with a tokenizer.
  const fs::path tmp = out / "tmp";
  fs::create_directories(tmp);
  write(tmp / "tokenizer.json", tok);
  Recipe r = parse_recipe(fuzz::kTinyRecipe, "tiny", {"checkpoint.dir=" + tmp.string()});
  LM model(r.model, {}, DType::f32);
  model.initialize(1);
  save_model((out / "model_file/tiny.h5").string(), model, r);
  Recipe with_tok = parse_recipe(fuzz::kTinyRecipe, "tiny",
                                 {"data.tokenizer=" + (tmp / "tokenizer.json").string()});
  save_model((out / "model_file/tiny-tokenizer.h5").string(), model, with_tok);
  Optimizer opt(model, r.optimizer, false);
  const std::string ckpt = save_checkpoint(r, model, opt, {3, R"({"position": 7})"}, 0);
  fs::create_directories(out / "checkpoint");
  fs::copy_file(ckpt, out / "checkpoint/step-3.h5", fs::copy_options::overwrite_existing);

  // safetensors: each dtype the reader takes, and metadata.
  fs::create_directories(out / "safetensors");
  SafetensorsWriter w;
  Tensor a = Tensor::from(std::vector<float>{1, -2, 3.5f, 0, 1e-3f, 65504}, {2, 3});
  w.add("a.weight", a);
  w.add("b.f16", a.to(DType::f16));
  w.add("c.bf16", a.slice(0, 1).to(DType::bf16));
  w.write((out / "safetensors/three.safetensors").string(), {{"format", "pt"}});
  SafetensorsWriter one;
  one.add("x", Tensor::from(std::vector<float>{0.5f}, {1}));
  one.write((out / "safetensors/one.safetensors").string(), {});
  fs::remove_all(tmp);
  fmt::print("seeds in {}\n", out.string());
  return 0;
}
