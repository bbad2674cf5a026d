// spectra prepare: text or JSONL -> tokenized HDF5 shards for training (docs/data.md).
#include <fmt/format.h>

#include <thread>

#include "data/prepare.h"
#include "tools/commands.h"

namespace spectra::tools {

void add_prepare(CLI::App& app) {
  auto o = std::make_shared<PrepareOptions>();
  o->threads = int(std::max(1u, std::thread::hardware_concurrency()));
  auto invalid = std::make_shared<std::string>("error");
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("prepare", "Tokenize text or JSONL files into HDF5 training data");
  cmd->add_option("inputs", o->inputs,
                  "Text files (one document each), JSONL files (one per line), "
                  ".gz/.zst compressed, or directories of them")
      ->required();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json (Hugging Face format)")->required();
  cmd->add_option("-o,--out", o->out, "Output .h5 file (with --shard-tokens: OUT-00000.h5, ...)")
      ->required();
  cmd->add_option("--format", o->format, "auto (by extension), text or jsonl")
      ->capture_default_str();
  cmd->add_option("--text-field", o->text_field, "JSONL field holding the text")
      ->capture_default_str();
  cmd->add_option("--eot", o->eot, "End-of-text token appended after each document")
      ->capture_default_str();
  cmd->add_option("-j,--threads", o->threads, "Tokenizing threads (default: all cores)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shard-tokens", o->shard_tokens,
                  "Start a new shard past this many tokens (0: one file)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--invalid-utf8", *invalid,
                  "error (name the file and offset) or replace (with U+FFFD)")
      ->capture_default_str()
      ->check(CLI::IsMember({"error", "replace"}));
  cmd->add_flag("-q,--quiet", *quiet, "No progress line");
  cmd->callback([o, invalid, quiet] {
    o->invalid_utf8 = *invalid == "replace" ? InvalidUtf8::Replace : InvalidUtf8::Error;
    o->progress = !*quiet;
    o->created_by = "spectra " SPECTRA_VERSION;
    PrepareResult r = prepare(*o);
    fmt::print("prepared {} documents, {} tokens, {:.1f} MB of text in {:.2f}s ({:.1f} MB/s)\n",
               r.documents, r.tokens, double(r.text_bytes) / 1e6, r.seconds,
               double(r.text_bytes) / 1e6 / std::max(r.seconds, 1e-9));
    if (r.empty_skipped) fmt::print("skipped {} empty documents\n", r.empty_skipped);
    if (r.replaced_utf8) fmt::print("replaced invalid UTF-8 in {} documents\n", r.replaced_utf8);
    for (const std::string& f : r.files) fmt::print("wrote {}\n", f);
  });
}

}  // namespace spectra::tools
