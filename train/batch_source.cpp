#include "train/batch_source.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/progress.h"

#include "data/loader.h"
#include "data/text.h"
#include "data/tokenizer.h"

namespace spectra {

namespace {

// The byte-level corpus: micro-batch i of rank r is window set (seed, i·dp_size + r), so the
// state is one counter and ranks never draw the same batch.
class ByteSource : public BatchSource {
 public:
  ByteSource(const Recipe& r, int rank, int size)
      : path_(r.data.text),
        corpus_(read_text_file(r.data.text), r.data.val_fraction),
        seed_(r.train.seed),
        batch_(r.train.micro_batch),
        seq_(r.train.seq_len),
        rank_(rank),
        size_(size) {}

  TokenBatch next() override {
    return corpus_.train_batch(seed_, uint64_t(index_++) * uint64_t(size_) + uint64_t(rank_),
                               batch_, seq_);
  }
  TokenBatch val_batch(int64_t i) override {
    return corpus_.val_batch(uint64_t(i) * uint64_t(size_) + uint64_t(rank_), batch_, seq_);
  }
  // The position in global micro-batches (all ranks together), so any layout can resume it.
  std::string state() const override {
    return nlohmann::json{{"kind", "bytes"}, {"batches", index_ * size_}}.dump();
  }
  void restore(const std::string& s) override {
    auto j = nlohmann::json::parse(s, nullptr, false);
    if (j.is_discarded() || j.value("kind", "") != "bytes" || !j.contains("batches"))
      user_error("the checkpoint's data state '{}' is not a byte-corpus state", s);
    const int64_t global = j["batches"].get<int64_t>();
    if (global % size_ != 0)
      user_error(
          "the checkpoint's data position ({} micro-batches) does not split over {} "
          "data-parallel ranks",
          global, size_);
    index_ = global / size_;
  }
  double bytes_per_token() const override { return 1.0; }
  int64_t train_tokens() const override { return corpus_.train_bytes(); }
  std::string describe() const override {
    return fmt::format("{} read as bytes: {} training tokens, {} held out", path_,
                       format_count(double(corpus_.train_bytes())),
                       format_count(double(corpus_.val_bytes())));
  }

 private:
  std::string path_;
  ByteCorpus corpus_;
  uint64_t seed_;
  int64_t batch_, seq_;
  int rank_, size_;
  int64_t index_ = 0;
};

// Prepared token datasets through data/loader.h, whose state is already layout-independent.
class DatasetSource : public BatchSource {
 public:
  DatasetSource(const Recipe& r, int rank, int size)
      : seq_(r.train.seq_len), loader_(options(r, rank, size)) {}

  TokenBatch next() override { return loader_.next(); }
  TokenBatch val_batch(int64_t i) override { return loader_.val_batch(i); }
  std::string state() const override {
    return nlohmann::json{{"kind", "datasets"},
                          {"loader", nlohmann::json::parse(loader_.state().to_json())}}
        .dump();
  }
  void restore(const std::string& s) override {
    auto j = nlohmann::json::parse(s, nullptr, false);
    if (j.is_discarded() || j.value("kind", "") != "datasets" || !j.contains("loader"))
      user_error(
          "the checkpoint's data state '{}' is not a dataset state (was it trained on "
          "data.text?)",
          s);
    loader_.restore(LoaderState::from_json(j["loader"].dump()));
  }
  double bytes_per_token() const override { return loader_.bytes_per_token(); }
  int64_t train_tokens() const override {
    int64_t windows = 0;
    for (size_t i = 0; i < loader_.sources(); i++) windows += loader_.train_windows(i);
    return windows * seq_;
  }
  std::string describe() const override {
    return fmt::format(
        "{} dataset{}: {} training tokens in windows of {}, {} held-out window{}; {:.2f} bytes "
        "per token; tokenizer sha256 {}",
        loader_.sources(), loader_.sources() == 1 ? "" : "s", format_count(double(train_tokens())),
        seq_, loader_.val_windows(), loader_.val_windows() == 1 ? "" : "s",
        loader_.bytes_per_token(), loader_.tokenizer_sha256().substr(0, 16));
  }

 private:
  static LoaderOptions options(const Recipe& r, int rank, int size) {
    LoaderOptions o;
    for (size_t i = 0; i < r.data.datasets.size(); i++)
      o.sources.push_back({r.data.datasets[i], r.data.weights.empty() ? 1.0 : r.data.weights[i]});
    o.seq_len = r.train.seq_len;
    o.batch_size = r.train.micro_batch;
    o.seed = r.train.seed;
    o.rank = rank;
    o.world = size;
    o.val_fraction = r.data.val_fraction;
    o.model_vocab = r.model.vocab_size;
    if (!r.data.tokenizer.empty()) o.tokenizer_sha256 = check_tokenizer(r).sha256();
    return o;
  }
  int64_t seq_;
  Loader loader_;
};

}  // namespace

Tokenizer check_tokenizer(const Recipe& r) {
  Tokenizer tok = Tokenizer::load(r.data.tokenizer);
  if (tok.vocab_size() > r.model.vocab_size)
    user_error(
        "{}: data.tokenizer '{}' has {} tokens but model.vocab_size is {}; the model needs an "
        "embedding row per token (raise model.vocab_size)",
        r.where("data.tokenizer"), r.data.tokenizer, tok.vocab_size(), r.model.vocab_size);
  return tok;
}

std::unique_ptr<BatchSource> make_batch_source(const Recipe& r, int dp_rank, int dp_size) {
  if (!r.data.text.empty()) return std::make_unique<ByteSource>(r, dp_rank, dp_size);
  if (!r.data.datasets.empty()) return std::make_unique<DatasetSource>(r, dp_rank, dp_size);
  user_error(
      "{}: the recipe names no training data; set data.text (a text corpus read as bytes) or "
      "data.datasets (token files from `spectra prepare`)",
      r.path);
}

}  // namespace spectra
