#include "data/bpe_train.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.h"
#include "data/bytelevel.h"
#include "data/tokenizer.h"

namespace spectra {

using ojson = nlohmann::ordered_json;

namespace {
ojson pre_tokenizer_json() {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", true}};
}

// tokenizer.json for the given tokens (by id) and merges, in the layout HF writes.
std::string tokenizer_json(const std::vector<std::string>& tokens, size_t n_special,
                           const std::vector<std::pair<int32_t, int32_t>>& merges) {
  ojson added = ojson::array();
  for (size_t i = 0; i < n_special; i++)
    added.push_back({{"id", i},
                     {"content", tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  ojson vocab = ojson::object();
  for (size_t i = 0; i < tokens.size(); i++) vocab[tokens[i]] = i;
  ojson ml = ojson::array();
  for (auto [a, b] : merges) ml.push_back({tokens[size_t(a)], tokens[size_t(b)]});
  ojson j = {{"version", "1.0"},
             {"truncation", nullptr},
             {"padding", nullptr},
             {"added_tokens", added},
             {"normalizer", nullptr},
             {"pre_tokenizer", pre_tokenizer_json()},
             {"post_processor",
              {{"type", "ByteLevel"},
               {"add_prefix_space", true},
               {"trim_offsets", false},
               {"use_regex", true}}},
             {"decoder",
              {{"type", "ByteLevel"},
               {"add_prefix_space", true},
               {"trim_offsets", true},
               {"use_regex", true}}},
             {"model",
              {{"type", "BPE"},
               {"dropout", nullptr},
               {"unk_token", nullptr},
               {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr},
               {"fuse_unk", false},
               {"byte_fallback", false},
               {"ignore_merges", false},
               {"vocab", vocab},
               {"merges", ml}}}};
  return j.dump(2) + "\n";
}

inline uint64_t key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
}  // namespace

BpeTrainer::BpeTrainer(BpeTrainOptions options) : options_(std::move(options)) {
  std::vector<std::string> tokens = options_.special_tokens;
  for (int b = 0; b < 256; b++) tokens.push_back(bytelevel::char_of(uint8_t(b)));
  for (size_t i = 0; i < options_.special_tokens.size(); i++) {
    if (options_.special_tokens[i].empty()) user_error("tokenizer train: a special token is empty");
    for (size_t k = 0; k < i; k++)
      if (options_.special_tokens[k] == options_.special_tokens[i])
        user_error("tokenizer train: special token '{}' given twice", options_.special_tokens[i]);
  }
  int64_t base = int64_t(tokens.size());
  if (options_.vocab_size < base)
    user_error("tokenizer train: --vocab-size {} is below the {} special and byte tokens",
               options_.vocab_size, base);
  splitter_ = std::make_unique<Tokenizer>(Tokenizer::parse(
      tokenizer_json(tokens, options_.special_tokens.size(), {}), "tokenizer train"));
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view text) {
  std::vector<std::string> words;
  splitter_->pre_tokenize(text, words);
  for (std::string& w : words) counts_[std::move(w)]++;
}

std::string BpeTrainer::train(const std::function<void(int64_t, int64_t)>& progress) {
  size_t n_special = options_.special_tokens.size();
  std::vector<std::string> tokens = options_.special_tokens;
  for (int b = 0; b < 256; b++) tokens.push_back(bytelevel::char_of(uint8_t(b)));
  const int32_t byte_base = int32_t(n_special);

  // Words in sorted order, so nothing depends on hash-map iteration order.
  std::vector<std::pair<std::string, int64_t>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < sorted.size(); w++) {
    for (unsigned char c : sorted[w].first) words[w].push_back(byte_base + c);
    freq[w] = sorted[w].second;
    for (size_t i = 0; i + 1 < words[w].size(); i++) {
      uint64_t k = key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& list = where[k];
      if (list.empty() || list.back() != int32_t(w)) list.push_back(int32_t(w));
    }
  }
  sorted.clear();

  // Max-heap on (count, then the smaller pair); entries go stale and are re-checked on pop.
  using Entry = std::pair<int64_t, uint64_t>;
  auto cmp = [](const Entry& x, const Entry& y) {
    return x.first != y.first ? x.first < y.first : x.second > y.second;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> heap(cmp);
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < tokens.size(); i++) ids.emplace(tokens[i], int32_t(i));
  std::vector<int64_t> seen(words.size(), -1);
  const int64_t target = options_.vocab_size - int64_t(tokens.size());
  const size_t base_tokens = tokens.size();
  std::vector<uint64_t> touched;
  std::vector<int32_t> merged;
  while (int64_t(tokens.size() - base_tokens) < target && !heap.empty()) {
    auto [c, k] = heap.top();
    heap.pop();
    auto it = pair_count.find(k);
    int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != c) {
      if (current > 0) heap.push({current, k});
      continue;
    }
    if (c < options_.min_frequency) break;
    int32_t a = int32_t(k >> 32), b = int32_t(uint32_t(k));
    // Two merge paths can spell the same token ("ab"+"c", "a"+"bc"): it keeps one id, as in HF.
    std::string text = tokens[size_t(a)] + tokens[size_t(b)];
    auto [pos, fresh] = ids.emplace(text, int32_t(tokens.size()));
    int32_t id = pos->second;
    if (fresh) tokens.push_back(std::move(text));
    merges.push_back({a, b});
    int64_t step = int64_t(merges.size());
    touched.clear();
    std::vector<int32_t> list = std::move(where[k]);
    where.erase(k);
    for (int32_t w : list) {
      if (seen[size_t(w)] == step) continue;
      seen[size_t(w)] = step;
      std::vector<int32_t>& sym = words[size_t(w)];
      merged.clear();
      for (size_t i = 0; i < sym.size(); i++) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          merged.push_back(id);
          i++;
        } else {
          merged.push_back(sym[i]);
        }
      }
      if (merged.size() == sym.size()) continue;
      int64_t f = freq[size_t(w)];
      for (size_t i = 0; i + 1 < sym.size(); i++) pair_count[key(sym[i], sym[i + 1])] -= f;
      for (size_t i = 0; i + 1 < merged.size(); i++) {
        uint64_t nk = key(merged[i], merged[i + 1]);
        pair_count[nk] += f;
        touched.push_back(nk);
        if (merged[i] == id || merged[i + 1] == id) {
          auto& l = where[nk];
          if (l.empty() || l.back() != w) l.push_back(w);
        }
      }
      sym.swap(merged);
    }
    pair_count.erase(k);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t t : touched)
      if (int64_t n = pair_count[t]; n > 0) heap.push({n, t});
    if (progress && merges.size() % 256 == 0) progress(int64_t(merges.size()), target);
  }
  if (progress) progress(int64_t(merges.size()), target);
  return tokenizer_json(tokens, n_special, merges);
}

}  // namespace spectra
