// Training a byte-level BPE tokenizer (GPT-2 style) and writing it as a Hugging Face
// tokenizer.json that HF `tokenizers` loads and encodes with exactly as spectra does.
//
//   BpeTrainer t({.vocab_size = 8192});
//   t.add_text(document);            // any number of times
//   std::string json = t.train();    // tokenizer.json text
//
// Words are counted after HF's ByteLevel pre-tokenizer (the GPT-2 regex, no prefix space);
// special tokens take ids 0.., the 256 bytes the next ids (in byte order), and merges the rest.
// Each step merges the most frequent adjacent pair (ties: the pair of smaller ids), so the
// result depends only on the text and the options.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace spectra {

class Tokenizer;

struct BpeTrainOptions {
  int64_t vocab_size = 8192;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  int64_t min_frequency = 2;  // pairs seen fewer times are never merged
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainOptions options);
  ~BpeTrainer();
  void add_text(std::string_view text);  // UserError on invalid UTF-8
  // Runs the merges; `progress` (if set) is called now and then with (merges done, target).
  std::string train(const std::function<void(int64_t, int64_t)>& progress = {});
  size_t distinct_words() const { return counts_.size(); }

 private:
  BpeTrainOptions options_;
  std::unique_ptr<Tokenizer> splitter_;  // specials + ByteLevel, no merges: the word splitter
  std::unordered_map<std::string, int64_t> counts_;
};

}  // namespace spectra
