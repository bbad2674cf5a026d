// spectra tokenizer encode|decode|train|info: the BPE tokenizer from the command line.
//   encode: stdin (UTF-8 text) -> one token id per line on stdout
//   decode: token ids (whitespace-separated) on stdin -> text on stdout
//   train:  text/JSONL files -> a tokenizer.json that Hugging Face `tokenizers` loads
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/progress.h"
#include "data/bpe_train.h"
#include "data/documents.h"
#include "data/tokenizer.h"
#include "tools/commands.h"

namespace spectra::tools {

namespace {
std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

struct TrainArgs {
  std::vector<std::string> inputs;
  std::string out, format = "auto", text_field = "text";
  BpeTrainOptions options;
};

void train(const TrainArgs& a) {
  BpeTrainer trainer(a.options);
  std::vector<std::string> files = expand_inputs(a.inputs);
  std::atomic<uint64_t> consumed{0};
  Stopwatch clock;
  int64_t docs = 0, bytes = 0;
  std::string text;
  for (size_t i = 0; i < files.size(); i++) {
    bool jsonl = is_jsonl(files[i], a.format);
    read_chunks(
        files[i], int32_t(i), jsonl, 1 << 20,
        [&](RawChunk&& c) {
          for (const RawRecord& r : c.records)
            if (record_text(r, files[i], jsonl, a.text_field, InvalidUtf8::Error, text, nullptr)) {
              trainer.add_text(text);
              docs++;
              bytes += int64_t(text.size());
            }
          return true;
        },
        consumed);
  }
  if (bytes == 0) user_error("tokenizer train: the inputs hold no text");
  fmt::print(stderr, "tokenizer train: {} documents, {}B of text, {} distinct words ({:.1f}s)\n",
             format_count(double(docs)), format_count(double(bytes)),
             format_count(double(trainer.distinct_words())), clock.seconds());
  // A rewritten line on a terminal; in a log, the final count only.
  const bool tty = isatty(fileno(stderr));
  int64_t merges = 0, wanted = 0;
  std::string json = trainer.train([&](int64_t done, int64_t target) {
    merges = done, wanted = target;
    if (tty) fmt::print(stderr, "\rtokenizer train: {} of {} merges", done, target);
  });
  fmt::print(stderr, "{}tokenizer train: {} of {} merges\n", tty ? "\r" : "", merges, wanted);
  std::string tmp = a.out + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) user_error("{}: cannot create", tmp);
  bool ok = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), a.out.c_str()) != 0) {
    std::remove(tmp.c_str());
    user_error("{}: cannot write", a.out);
  }
  Tokenizer check = Tokenizer::load(a.out);
  fmt::print(stderr, "tokenizer train: wrote {} (vocabulary {}, {:.1f}s)\n", a.out,
             check.vocab_size(), clock.seconds());
}
}  // namespace

void add_tokenizer(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("tokenizer",
                                     "Encode, decode or train a BPE tokenizer (HF tokenizer.json)");
  cmd->require_subcommand(1);

  auto path = std::make_shared<std::string>();
  auto skip = std::make_shared<bool>(false), jsonl = std::make_shared<bool>(false);
  CLI::App* enc = cmd->add_subcommand("encode", "UTF-8 text on stdin -> one token id per line");
  enc->add_option("--tokenizer", *path, "tokenizer.json")->required();
  enc->add_flag("--jsonl", *jsonl,
                "Many texts: each stdin line a JSON string, each output line its ids");
  enc->callback([path, jsonl] {
    Tokenizer tok = Tokenizer::load(*path);
    std::string text = read_stdin(), out;
    if (!*jsonl) {
      for (int32_t id : tok.encode(text)) fmt::format_to(std::back_inserter(out), "{}\n", id);
    } else {
      std::istringstream in(text);
      std::string line;
      for (int n = 1; std::getline(in, line); n++) {
        std::string s;
        try {
          s = nlohmann::json::parse(line).get<std::string>();
        } catch (const nlohmann::json::exception& e) {
          user_error("encode: stdin line {} is not a JSON string ({})", n, e.what());
        }
        fmt::format_to(std::back_inserter(out), "{}\n", fmt::join(tok.encode(s), " "));
      }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  });

  CLI::App* dec = cmd->add_subcommand("decode", "Token ids on stdin -> text on stdout");
  dec->add_option("--tokenizer", *path, "tokenizer.json")->required();
  dec->add_flag("--skip-special", *skip, "Leave out special tokens");
  dec->add_flag("--jsonl", *jsonl, "Many sequences: each stdin line's ids -> a JSON string line");
  dec->callback([path, skip, jsonl] {
    Tokenizer tok = Tokenizer::load(*path);
    auto ids_of = [&](const std::string& text) {
      std::istringstream in(text);
      std::vector<int32_t> ids;
      std::string word;
      while (in >> word) {
        size_t used = 0;
        long v = -1;
        try {
          v = std::stol(word, &used);
        } catch (const std::exception&) {
        }
        if (used != word.size() || v < 0 || v >= tok.vocab_size())
          user_error("decode: '{}' is not a token id of {} (0..{})", word, *path,
                     tok.vocab_size() - 1);
        ids.push_back(int32_t(v));
      }
      return ids;
    };
    std::string text = read_stdin(), out;
    if (!*jsonl) {
      out = tok.decode(ids_of(text), *skip);
    } else {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line))
        out += nlohmann::json(tok.decode(ids_of(line), *skip)).dump() + "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  });

  CLI::App* info = cmd->add_subcommand("info", "Vocabulary size, special tokens and sha256");
  info->add_option("--tokenizer", *path, "tokenizer.json")->required();
  info->callback([path] {
    Tokenizer tok = Tokenizer::load(*path);
    fmt::print("tokenizer {}\nvocab_size {}\nsha256 {}\n", *path, tok.vocab_size(), tok.sha256());
    for (const AddedToken& t : tok.added_tokens())
      if (t.special) fmt::print("special {} {}\n", t.id, t.content);
  });

  auto a = std::make_shared<TrainArgs>();
  CLI::App* tr =
      cmd->add_subcommand("train", "Train a byte-level BPE tokenizer on text or JSONL files");
  tr->add_option("inputs", a->inputs,
                 "Text (.txt, one document per file) or JSONL files, .gz/.zst too")
      ->required();
  tr->add_option("-o,--out", a->out, "tokenizer.json to write")->required();
  tr->add_option("--vocab-size", a->options.vocab_size,
                 "Vocabulary size (special + 256 bytes + merges)")
      ->capture_default_str();
  tr->add_option("--special", a->options.special_tokens, "Special tokens, ids 0.. (repeatable)")
      ->capture_default_str();
  tr->add_option("--min-frequency", a->options.min_frequency, "Never merge a pair seen fewer times")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  tr->add_option("--format", a->format, "auto, text or jsonl")->capture_default_str();
  tr->add_option("--text-field", a->text_field, "JSONL field holding the text")
      ->capture_default_str();
  tr->callback([a] { train(*a); });
}

}  // namespace spectra::tools
