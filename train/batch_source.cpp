#include "train/batch_source.h"

#include <nlohmann/json.hpp>

#include "data/text.h"

namespace spectra {

namespace {

// The byte-level corpus: micro-batch i of rank r is window set (seed, i·dp_size + r), so the
// state is one counter and ranks never draw the same batch.
class ByteSource : public BatchSource {
 public:
  ByteSource(const Recipe& r, int rank, int size)
      : corpus_(read_text_file(r.data.text), r.data.val_fraction),
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

 private:
  ByteCorpus corpus_;
  uint64_t seed_;
  int64_t batch_, seq_;
  int rank_, size_;
  int64_t index_ = 0;
};

}  // namespace

std::unique_ptr<BatchSource> make_batch_source(const Recipe& r, int dp_rank, int dp_size) {
  if (!r.data.text.empty()) return std::make_unique<ByteSource>(r, dp_rank, dp_size);
  user_error(
      "{}: set data.text (a text corpus read as bytes); data.datasets is not wired to training yet",
      r.path);
}

}  // namespace spectra
