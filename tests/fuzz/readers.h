// The six file readers as the fuzz harnesses (fuzz_<reader>.cpp) and the regression test
// (tests/test_fuzz_regressions.cpp) drive them: input bytes in, the real reader called the way
// spectra calls it. A reader may reject an input only with spectra's own errors (spectra::Error
// and its UserError), which run() swallows. Anything else (a crash, a sanitizer report, another
// exception, a hang) is a finding: an uncaught exception ends in std::terminate.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "tools/safetensors.h"
#include "train/checkpoint.h"
#include "train/model_file.h"
#include "train/recipe.h"

namespace spectra::fuzz {

// The tiny model of the checkpoint and model-file seeds and harnesses: a self-contained recipe
// (no `base:`), so the harnesses need no files besides their input.
inline const char* kTinyRecipe = R"(
model: {kind: trilm, vocab_size: 16, vocab_rows: 16, hidden: 8, ffn: 8, heads: 2, layers: 1,
        context: 8}
data: {text: "", datasets: []}
train: {steps: 4, seq_len: 8, micro_batch: 2, global_batch: 2, device: cpu, precision: f32}
checkpoint: {dir: "", interval: 0, keep: 1}
)";

// Runs one reader; spectra's errors are the expected way to reject an input.
template <class F>
void run(F&& reader) {
  log::set_quiet(true);
  try {
    reader();
  } catch (const Error&) {
  }
}

// The readers of files take a path: the input goes to one file in /dev/shm (memory, so the
// fuzzer is not slowed by the disk), rewritten for every input.
inline std::string input_file(const uint8_t* data, size_t size, const char* suffix) {
  const std::string path = "/dev/shm/spectra-fuzz-" + std::to_string(::getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
  return path;
}

inline std::string_view text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// tokenizer.json text -> Tokenizer::parse, then encoding and decoding fixed text and every id
// (a tokenizer that parses must be usable).
inline void tokenizer(const uint8_t* data, size_t size) {
  run([&] {
    Tokenizer tok = Tokenizer::parse(text(data, size), "fuzz tokenizer.json");
    std::vector<int32_t> ids = tok.encode("Hello, world! <|endoftext|> 123  \n\tcafé 日本");
    tok.decode(ids);
    tok.decode_bytes(ids);
    std::vector<int32_t> all;  // every id, special ones and unknown ones included
    for (int64_t i = -1; i <= std::min<int64_t>(tok.vocab_size(), 2048); i++)
      all.push_back(int32_t(i));
    tok.decode(all, true);
    for (int32_t i : all) tok.id_to_token(i);
  });
}

// Recipe YAML -> parse_recipe (`base:` resolved against an empty directory), the schedule at a
// few steps as the trainer asks for it, and Recipe::text parsed back.
inline void recipe(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = "/dev/shm/spectra-fuzz-recipe-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  run([&] {
    Recipe r = parse_recipe(std::string(text(data, size)), "fuzz.yaml", {}, dir);
    for (int64_t step : {int64_t(0), r.train.steps / 2, r.train.steps - 1}) {
      lr_at(r.schedule, step, r.train.steps);
      weight_decay_at(r.schedule, step, r.train.steps);
    }
    parse_recipe(r.text, "fuzz.yaml:text", {}, dir);
  });
}

// An HDF5 token file (`spectra prepare`) -> TokenFile, its document offsets and first tokens.
inline void token_file(const uint8_t* data, size_t size) {
  const std::string path = input_file(data, size, ".h5");
  run([&] {
    TokenFile f(path);
    f.doc_offsets();
    const int64_t n = std::min<int64_t>(f.num_tokens(), 4096);
    std::vector<int32_t> tokens(size_t(n) + 1);
    f.read(0, n, tokens.data());
  });
}

// A checkpoint -> verify_checkpoint, describe_checkpoint (`spectra inspect`) and load_checkpoint
// into the tiny model (even when verification fails: what the trainer's other ranks do).
inline void checkpoint(const uint8_t* data, size_t size) {
  static Recipe r = parse_recipe(kTinyRecipe, "tiny");
  static LM model(r.model, {}, DType::f32);
  static Optimizer opt(model, r.optimizer, false);
  const std::string path = input_file(data, size, ".h5");
  run([&] { verify_checkpoint(path); });
  run([&] { describe_checkpoint(path); });
  run([&] { load_checkpoint(path, r, model, opt); });
}

// A model file -> load_model (generate, eval, export) and load_weights (train.init) into the
// tiny model.
inline void model_file(const uint8_t* data, size_t size) {
  static Recipe r = parse_recipe(kTinyRecipe, "tiny");
  static LM model(r.model, {}, DType::f32);
  const std::string path = input_file(data, size, ".h5");
  run([&] { load_model(path, Device::cpu(), DType::f32); });
  run([&] { load_weights(path, model); });
}

// A .safetensors file -> SafetensorsReader (`spectra convert`), every tensor read as f32.
inline void safetensors(const uint8_t* data, size_t size) {
  const std::string path = input_file(data, size, ".safetensors");
  run([&] {
    SafetensorsReader r(path);
    for (const std::string& name : r.names()) {
      r.shape(name);
      r.read_f32(name);
    }
  });
}

}  // namespace spectra::fuzz
