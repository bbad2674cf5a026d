#include "data/prepare.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/progress.h"
#include "data/documents.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

namespace spectra {

namespace fs = std::filesystem;

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file()) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(in)) {
      files.push_back(in);
    } else {
      user_error("{}: no such file or directory", in);
    }
  }
  if (files.empty()) user_error("prepare: no input files");
  return files;
}

namespace {
constexpr size_t kChunkBytes = 1 << 20;

struct Result {
  std::vector<uint32_t> tokens;
  std::vector<int64_t> doc_lengths;  // tokens per document, end-of-text included
  std::vector<int64_t> doc_bytes;    // text bytes per document
  int64_t text_bytes = 0, empty = 0, replaced = 0;
  int32_t file = 0;
  std::exception_ptr error;
};

// The ordered hand-off between the reader, the tokenizing workers and the writer.
struct Pipeline {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<int64_t, RawChunk>> todo;
  std::map<int64_t, Result> done;
  int64_t read = 0, written = 0;  // chunks read so far / handed to the writer
  bool reader_finished = false, stop = false;
  int64_t max_in_flight = 8;
};

Result tokenize_chunk(const RawChunk& c, const std::vector<std::string>& files,
                      const Tokenizer& tok, const PrepareOptions& o, int32_t eot) {
  Result r;
  r.file = c.file;
  if (c.error) {
    r.error = c.error;
    return r;
  }
  try {
    std::string text;
    for (const RawRecord& rec : c.records) {
      if (!record_text(rec, files[size_t(c.file)], c.jsonl, o.text_field, o.invalid_utf8, text,
                       &r.replaced))
        continue;
      if (text.empty()) {
        r.empty++;
        continue;
      }
      thread_local std::vector<int32_t> ids;
      ids.clear();
      tok.encode(text, ids);
      ids.push_back(eot);
      r.tokens.insert(r.tokens.end(), ids.begin(), ids.end());
      r.doc_lengths.push_back(int64_t(ids.size()));
      r.doc_bytes.push_back(int64_t(text.size()));
      r.text_bytes += int64_t(text.size());
    }
  } catch (...) {
    r.error = std::current_exception();
  }
  return r;
}

// Accumulates documents into shards and writes each under a temporary name.
class ShardWriter {
 public:
  ShardWriter(const PrepareOptions& o, const Tokenizer& tok, int32_t eot,
              const std::vector<std::string>& files)
      : o_(o), files_(files) {
    meta_.tokenizer_sha256 = tok.sha256();
    meta_.tokenizer = o.tokenizer;
    meta_.vocab_size = tok.vocab_size();
    meta_.eot_id = eot;
    meta_.text_field = o.text_field;
    meta_.created_by = o.created_by;
    offsets_.push_back(0);
  }
  void add(const Result& r) {
    size_t at = 0;
    for (size_t d = 0; d < r.doc_lengths.size(); d++) {
      size_t len = size_t(r.doc_lengths[d]);
      tokens_.insert(tokens_.end(), r.tokens.begin() + long(at), r.tokens.begin() + long(at + len));
      offsets_.push_back(int64_t(tokens_.size()));
      at += len;
      meta_.text_bytes += r.doc_bytes[d];
      if (sources_.empty() || sources_.back() != r.file) sources_.push_back(r.file);
      // A shard ends at a document boundary once it has shard_tokens tokens.
      if (o_.shard_tokens > 0 && int64_t(tokens_.size()) >= o_.shard_tokens) flush();
    }
  }
  void finish() {
    if (offsets_.size() > 1) flush();
  }
  // Final names, in order, and their temporary names.
  std::vector<std::pair<std::string, std::string>> shards;

 private:
  std::string name(size_t index) const {
    if (o_.shard_tokens <= 0) return o_.out;
    std::string stem = o_.out.ends_with(".h5") ? o_.out.substr(0, o_.out.size() - 3) : o_.out;
    return fmt::format("{}-{:05}.h5", stem, index);
  }
  void flush() {
    std::string final_name = name(shards.size()), tmp = final_name + ".tmp";
    shards.emplace_back(final_name, tmp);
    std::sort(sources_.begin(), sources_.end());
    sources_.erase(std::unique(sources_.begin(), sources_.end()), sources_.end());
    nlohmann::json src = nlohmann::json::array();
    for (int32_t f : sources_) src.push_back(files_[size_t(f)]);
    meta_.sources = src.dump();
    meta_.num_documents = int64_t(offsets_.size()) - 1;
    meta_.num_tokens = int64_t(tokens_.size());
    write_token_file(tmp, tokens_, offsets_, meta_);
    tokens_.clear();
    offsets_.assign(1, 0);
    sources_.clear();
    meta_.text_bytes = 0;
  }
  const PrepareOptions& o_;
  const std::vector<std::string>& files_;
  TokenFileMeta meta_;
  std::vector<uint32_t> tokens_;
  std::vector<int64_t> offsets_;
  std::vector<int32_t> sources_;
};
}  // namespace

PrepareResult prepare(const PrepareOptions& o) {
  if (o.threads < 1) user_error("--threads must be at least 1");
  if (o.out.empty()) user_error("prepare: no output file (--out)");
  std::vector<std::string> files = expand_inputs(o.inputs);
  Tokenizer tok = Tokenizer::load(o.tokenizer);
  for (const std::string& f : files)
    if (fs::equivalent(f, o.tokenizer))
      user_error("{}: the tokenizer is also listed as an input", f);
  int32_t eot = tok.token_to_id(o.eot);
  if (eot < 0)
    user_error("{}: end-of-text token '{}' is not in the vocabulary (choose it with --eot)",
               o.tokenizer, o.eot);
  std::vector<bool> jsonl;
  uint64_t total_bytes = 0;
  for (const std::string& f : files) {
    jsonl.push_back(is_jsonl(f, o.format));
    total_bytes += fs::file_size(f);
  }

  Stopwatch clock;
  Pipeline p;
  p.max_in_flight = 4 * int64_t(o.threads) + 2;
  std::atomic<uint64_t> consumed{0};
  auto push = [&](RawChunk&& c) {
    std::unique_lock lock(p.mu);
    p.cv.wait(lock, [&] { return p.stop || p.read - p.written < p.max_in_flight; });
    if (p.stop) return false;
    p.todo.emplace_back(p.read++, std::move(c));
    p.cv.notify_all();
    return true;
  };
  std::thread reader([&] {
    uint64_t before = 0;
    for (size_t i = 0; i < files.size(); i++) {
      consumed = before;
      try {
        read_chunks(files[i], int32_t(i), jsonl[i], kChunkBytes, push, consumed);
      } catch (...) {
        push(RawChunk{int32_t(i), false, {}, std::current_exception()});
        break;
      }
      before += fs::file_size(files[i]);
      if (p.stop) break;
    }
    std::lock_guard lock(p.mu);
    p.reader_finished = true;
    p.cv.notify_all();
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < o.threads; w++)
    workers.emplace_back([&] {
      for (;;) {
        std::unique_lock lock(p.mu);
        p.cv.wait(lock, [&] { return p.stop || !p.todo.empty() || p.reader_finished; });
        if (p.stop || p.todo.empty()) return;
        auto [seq, chunk] = std::move(p.todo.front());
        p.todo.pop_front();
        lock.unlock();
        Result r = tokenize_chunk(chunk, files, tok, o, eot);
        lock.lock();
        p.done.emplace(seq, std::move(r));
        p.cv.notify_all();
      }
    });

  PrepareResult result;
  ShardWriter writer(o, tok, eot, files);
  bool tty = isatty(fileno(stderr));
  double last_report = 0;
  auto report = [&](bool final_line) {
    double t = clock.seconds();
    if (!o.progress || (!final_line && t - last_report < (tty ? 0.5 : 10.0))) return;
    last_report = t;
    double done = double(consumed.load());
    fmt::print(
        stderr, "{}prepare: {:.1f}% of {}B, {} docs, {} tokens, {:.1f} MB/s of text, ETA {}{}",
        tty ? "\r" : "", total_bytes ? 100.0 * done / double(total_bytes) : 100.0,
        format_count(double(total_bytes)), format_count(double(result.documents)),
        format_count(double(result.tokens)), double(result.text_bytes) / 1e6 / std::max(t, 1e-9),
        final_line ? "0:00" : format_duration(eta_seconds(done, double(total_bytes), t)),
        tty && !final_line ? "\x1b[K" : "\n");
  };
  auto shutdown = [&] {
    {
      std::lock_guard lock(p.mu);
      p.stop = true;
      p.cv.notify_all();
    }
    reader.join();
    for (auto& w : workers) w.join();
  };
  try {
    for (;;) {
      Result r;
      {
        std::unique_lock lock(p.mu);
        p.cv.wait_for(lock, std::chrono::milliseconds(500), [&] {
          return p.done.count(p.written) || (p.reader_finished && p.written == p.read);
        });
        if (p.reader_finished && p.written == p.read) break;
        auto it = p.done.find(p.written);
        if (it == p.done.end()) {
          lock.unlock();
          report(false);
          continue;
        }
        r = std::move(it->second);
        p.done.erase(it);
        p.written++;
        p.cv.notify_all();
      }
      if (r.error) std::rethrow_exception(r.error);
      writer.add(r);
      result.documents += int64_t(r.doc_lengths.size());
      result.tokens += int64_t(r.tokens.size());
      result.text_bytes += r.text_bytes;
      result.empty_skipped += r.empty;
      result.replaced_utf8 += r.replaced;
      report(false);
    }
    if (result.documents == 0)
      user_error(
          "prepare: the inputs hold no documents ({} files{}); nothing written", files.size(),
          result.empty_skipped ? fmt::format(", {} empty documents skipped", result.empty_skipped)
                               : "");
    writer.finish();
    shutdown();
  } catch (...) {
    shutdown();
    if (o.progress && tty) fmt::print(stderr, "\n");
    for (auto& [final_name, tmp] : writer.shards) fs::remove(tmp);
    throw;
  }
  for (auto& [final_name, tmp] : writer.shards) {
    fs::rename(tmp, final_name);
    result.files.push_back(final_name);
  }
  // Shards left by an earlier, longer run of the same output would join this dataset: remove.
  if (o.shard_tokens > 0) {
    std::string stem = o.out.ends_with(".h5") ? o.out.substr(0, o.out.size() - 3) : o.out;
    for (size_t i = result.files.size();; i++) {
      std::string stale = fmt::format("{}-{:05}.h5", stem, i);
      if (!fs::exists(stale)) break;
      fs::remove(stale);
    }
  }
  report(true);
  result.seconds = clock.seconds();
  return result;
}

}  // namespace spectra
