// The training data loader: fixed windows of seq_len+1 tokens over prepared token files
// (data/token_file.h), in a seeded order that is the same on every run and every layout.
//
//   Loader loader({.sources = {{"data/slimpajama"}}, .seq_len = 2048, .batch_size = 8,
//                  .seed = 1, .rank = r, .world = dp, .val_fraction = 0.001});
//   TokenBatch b = loader.next();           // ids/targets [B*T] i32 on the host
//   std::string s = loader.state().to_json();   // into the checkpoint; restore() resumes
//
// A source is one token file, or its shards (OUT-00000.h5, ... or a directory of .h5 files).
// Its tokens are cut into windows starting every seq_len tokens (each window's targets are its
// ids shifted by one, so consecutive windows share one token); the last val_fraction of the
// windows form the held-out validation split and are never trained on.
// Order: the global stream of windows draws from the sources in proportion to their weights
// (deterministically: each draw goes to the source furthest behind its share), and source i's
// k-th draw is window perm_{seed,i,epoch}(k mod W_i) of epoch k / W_i, a fresh permutation per
// epoch. Global batch b holds the stream's windows [b*B*R, (b+1)*B*R); rank r of R takes every
// R-th of them, so ranks are disjoint and together draw exactly what one process would.
// Batches are read ahead on a background thread. The state (windows drawn, per source and in
// all) is layout-independent: a run resumed on another number of ranks continues the stream.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/byte_corpus.h"
#include "data/token_file.h"

namespace spectra {

struct DataSource {
  std::string path;
  double weight = 1.0;
};

struct LoaderOptions {
  std::vector<DataSource> sources;
  int64_t seq_len = 0;
  int64_t batch_size = 0;  // windows per rank per batch
  uint64_t seed = 0;
  int rank = 0, world = 1;
  double val_fraction = 0.0;
  int prefetch = 2;              // batches read ahead
  int64_t model_vocab = 0;       // refuse data with larger token ids (0: no check)
  std::string tokenizer_sha256;  // refuse data prepared with another tokenizer ("": any)
};

struct LoaderState {
  uint64_t samples = 0;         // windows drawn by all ranks together
  std::vector<uint64_t> drawn;  // windows drawn from each source
  uint64_t seed = 0;
  int64_t seq_len = 0;
  std::string to_json() const;
  static LoaderState from_json(const std::string& text);  // UserError if malformed
};

// How many of a source's `windows` form its held-out tail: max(1, ⌊windows·fraction⌋) when
// fraction > 0, else none.
int64_t validation_windows(int64_t windows, double fraction);

// The shard files a source path names, in order.
std::vector<std::string> source_files(const std::string& path);

class Loader {
 public:
  explicit Loader(LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;

  TokenBatch next();                       // the next training batch of this rank
  LoaderState state() const;               // after the last batch next() returned
  void restore(const LoaderState& state);  // the next batch is the one after `state`

  // Held-out batch `index`: consecutive validation windows (all sources, in order), split
  // across ranks like training batches, wrapping around.
  TokenBatch val_batch(int64_t index) const;
  int64_t val_windows() const { return val_total_; }
  size_t sources() const { return sources_.size(); }
  int64_t train_windows(size_t source) const { return sources_[source].train; }
  uint64_t epoch(size_t source) const;  // epochs of source completed by the returned batches
  int64_t vocab_size() const { return vocab_size_; }  // the datasets' vocabulary
  // UTF-8 bytes of source text per token over all the data (end-of-text tokens included):
  // bits per byte = loss in nats per token / ln 2 / bytes_per_token().
  double bytes_per_token() const { return bytes_per_token_; }
  const std::string& tokenizer_sha256() const { return sha_; }

  // Global window `g`'s (source, window index) given the draws so far; advances `state`.
  std::pair<size_t, int64_t> draw(LoaderState& state) const;

 private:
  struct Source {
    std::vector<TokenFile> files;
    std::vector<int64_t> first_window;  // per file; plus the total at the end
    int64_t windows = 0, train = 0, val = 0;
    double share = 0;
  };
  void read_window(const Source& s, int64_t w, int32_t* ids, int32_t* targets) const;
  TokenBatch make_batch(const std::vector<std::pair<size_t, int64_t>>& windows) const;
  void start();
  void stop();
  void produce();

  LoaderOptions o_;
  std::vector<Source> sources_;
  int64_t val_total_ = 0, vocab_size_ = 0;
  double bytes_per_token_ = 0;
  std::string sha_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<TokenBatch, LoaderState>> queue_;
  LoaderState consumed_, produced_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace spectra
