#include "data/loader.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/permutation.h"

namespace spectra {

namespace fs = std::filesystem;

std::string LoaderState::to_json() const {
  nlohmann::json j = {{"samples", samples}, {"drawn", drawn}, {"seed", seed}, {"seq_len", seq_len}};
  return j.dump();
}

LoaderState LoaderState::from_json(const std::string& text) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    LoaderState s;
    s.samples = j.at("samples").get<uint64_t>();
    s.drawn = j.at("drawn").get<std::vector<uint64_t>>();
    s.seed = j.at("seed").get<uint64_t>();
    s.seq_len = j.at("seq_len").get<int64_t>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    user_error("loader state is malformed ({}): '{}'", e.what(), text);
  }
}

std::vector<std::string> source_files(const std::string& path) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) user_error("{}: directory holds no .h5 token files", path);
    return files;
  }
  if (fs::exists(path)) return {path};
  std::string stem = path.ends_with(".h5") ? path.substr(0, path.size() - 3) : path;
  for (int i = 0;; i++) {
    std::string shard = fmt::format("{}-{:05}.h5", stem, i);
    if (!fs::exists(shard)) break;
    files.push_back(shard);
  }
  if (files.empty()) user_error("{}: no such token file (nor shards {}-00000.h5, ...)", path, stem);
  return files;
}

Loader::Loader(LoaderOptions o) : o_(std::move(o)) {
  if (o_.sources.empty()) user_error("loader: no data sources");
  if (o_.seq_len < 1 || o_.batch_size < 1)
    user_error("loader: seq_len and batch size must be positive");
  if (o_.world < 1 || o_.rank < 0 || o_.rank >= o_.world)
    user_error("loader: rank {} of {}", o_.rank, o_.world);
  if (o_.val_fraction < 0 || o_.val_fraction >= 1)
    user_error("loader: val_fraction {} is not in [0, 1)", o_.val_fraction);
  double total_weight = 0;
  for (const DataSource& d : o_.sources) {
    if (!(d.weight > 0)) user_error("{}: mixture weight {} must be positive", d.path, d.weight);
    total_weight += d.weight;
  }
  std::string first_file;
  int64_t text_bytes = 0, tokens = 0;
  for (const DataSource& d : o_.sources) {
    Source s;
    s.share = d.weight / total_weight;
    for (const std::string& f : source_files(d.path)) {
      TokenFile tf(f);
      const TokenFileMeta& m = tf.meta();
      if (sha_.empty()) sha_ = m.tokenizer_sha256, first_file = f;
      if (m.tokenizer_sha256 != sha_)
        user_error(
            "{}: prepared with tokenizer sha256 {}, but {} with {}: all data must share "
            "one tokenizer",
            f, m.tokenizer_sha256, first_file, sha_);
      if (!o_.tokenizer_sha256.empty() && m.tokenizer_sha256 != o_.tokenizer_sha256)
        user_error("{}: prepared with tokenizer sha256 {}, the recipe's tokenizer is {}", f,
                   m.tokenizer_sha256, o_.tokenizer_sha256);
      if (o_.model_vocab > 0 && m.vocab_size > o_.model_vocab)
        user_error(
            "{}: its tokenizer has {} tokens, more than the model's vocabulary of {} "
            "(model.vocab_size must be at least the tokenizer's)",
            f, m.vocab_size, o_.model_vocab);
      vocab_size_ = std::max(vocab_size_, m.vocab_size);
      text_bytes += m.text_bytes;
      tokens += m.num_tokens;
      s.first_window.push_back(s.windows);
      s.windows += std::max<int64_t>(0, (tf.num_tokens() - 1) / o_.seq_len);
      s.files.push_back(std::move(tf));
    }
    s.first_window.push_back(s.windows);
    s.val = validation_windows(s.windows, o_.val_fraction);
    s.train = s.windows - s.val;
    if (s.train < 1)
      user_error("{}: {} windows of {} tokens: too little data for a training split", d.path,
                 s.windows, o_.seq_len + 1);
    val_total_ += s.val;
    sources_.push_back(std::move(s));
  }
  bytes_per_token_ = tokens > 0 ? double(text_bytes) / double(tokens) : 0;
  consumed_.drawn.assign(sources_.size(), 0);
  consumed_.seed = o_.seed;
  consumed_.seq_len = o_.seq_len;
  produced_ = consumed_;
  start();
}

Loader::~Loader() { stop(); }

std::pair<size_t, int64_t> Loader::draw(LoaderState& st) const {
  // The source furthest behind its share of the draws so far (ties: the first).
  size_t best = 0;
  double best_gap = -1e300;
  for (size_t i = 0; i < sources_.size(); i++) {
    double gap = sources_[i].share * double(st.samples + 1) - double(st.drawn[i]);
    if (gap > best_gap) best_gap = gap, best = i;
  }
  const Source& s = sources_[best];
  uint64_t k = st.drawn[best]++;
  st.samples++;
  uint64_t epoch = k / uint64_t(s.train), pos = k % uint64_t(s.train);
  Philox4 h = philox4x32(epoch, o_.seed ^ (0x9E3779B97F4A7C15ull * (best + 1)));
  Permutation perm(uint64_t(s.train), uint64_t(h.x[0]) | uint64_t(h.x[1]) << 32);
  return {best, int64_t(perm(pos))};
}

void Loader::read_window(const Source& s, int64_t w, int32_t* ids, int32_t* targets) const {
  size_t f = size_t(std::upper_bound(s.first_window.begin(), s.first_window.end(), w) -
                    s.first_window.begin()) -
             1;
  int64_t t = o_.seq_len;
  thread_local std::vector<int32_t> buf;
  buf.resize(size_t(t + 1));
  s.files[f].read((w - s.first_window[f]) * t, t + 1, buf.data());
  std::copy(buf.begin(), buf.end() - 1, ids);
  std::copy(buf.begin() + 1, buf.end(), targets);
}

TokenBatch Loader::make_batch(const std::vector<std::pair<size_t, int64_t>>& windows) const {
  int64_t b = int64_t(windows.size()), t = o_.seq_len;
  TokenBatch out{Tensor::empty({b * t}, DType::i32), Tensor::empty({b * t}, DType::i32), b, t};
  for (int64_t i = 0; i < b; i++)
    read_window(sources_[windows[size_t(i)].first], windows[size_t(i)].second,
                out.ids.data<int32_t>() + i * t, out.targets.data<int32_t>() + i * t);
  return out;
}

void Loader::produce() {
  try {
    for (;;) {
      LoaderState st;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || int(queue_.size()) < std::max(1, o_.prefetch); });
        if (stop_) return;
        st = produced_;
      }
      std::vector<std::pair<size_t, int64_t>> mine;
      for (int64_t j = 0; j < o_.batch_size * o_.world; j++) {
        auto w = draw(st);
        if (j % o_.world == o_.rank) mine.push_back(w);
      }
      TokenBatch batch = make_batch(mine);
      std::lock_guard lock(mu_);
      if (stop_) return;
      produced_ = st;
      queue_.emplace_back(std::move(batch), st);
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

void Loader::start() {
  stop_ = false;
  thread_ = std::thread([this] { produce(); });
}

void Loader::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

TokenBatch Loader::next() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  auto [batch, st] = std::move(queue_.front());
  queue_.pop_front();
  consumed_ = st;
  cv_.notify_all();
  return batch;
}

LoaderState Loader::state() const {
  std::lock_guard lock(mu_);
  return consumed_;
}

void Loader::restore(const LoaderState& s) {
  if (s.seed != o_.seed || s.seq_len != o_.seq_len)
    user_error(
        "loader state was saved with seed {} and seq_len {}; this run has seed {} and "
        "seq_len {}",
        s.seed, s.seq_len, o_.seed, o_.seq_len);
  if (s.drawn.size() != sources_.size())
    user_error("loader state has {} data sources; this run has {}", s.drawn.size(),
               sources_.size());
  stop();
  queue_.clear();
  error_ = nullptr;
  consumed_ = produced_ = s;
  start();
}

int64_t validation_windows(int64_t windows, double fraction) {
  return fraction > 0 ? std::max<int64_t>(1, int64_t(double(windows) * fraction)) : 0;
}

uint64_t Loader::epoch(size_t source) const {
  std::lock_guard lock(mu_);
  return consumed_.drawn[source] / uint64_t(sources_[source].train);
}

TokenBatch Loader::val_batch(int64_t index) const {
  if (val_total_ == 0) user_error("loader: no validation split (val_fraction is 0)");
  std::vector<std::pair<size_t, int64_t>> windows;
  for (int64_t j = 0; j < o_.batch_size; j++) {
    int64_t v = (index * o_.batch_size * o_.world + j * o_.world + o_.rank) % val_total_;
    size_t i = 0;
    while (v >= sources_[i].val) v -= sources_[i++].val;
    windows.push_back({i, sources_[i].train + v});
  }
  return make_batch(windows);
}

}  // namespace spectra
