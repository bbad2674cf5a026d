// Pre-tokenization: splitting text into the words BPE encodes separately, as Hugging Face
// `tokenizers` does for byte-level models. Supported steps (tokenizer.json "pre_tokenizer"):
//   ByteLevel {add_prefix_space, use_regex}  (GPT-2, GPT-NeoX: the GPT-2 regex)
//   Split {pattern: {Regex|String}, behavior, invert}  (Llama 3, Qwen: inside a Sequence)
//   Digits {individual_digits}
// and a Sequence of them. Each step applies to every piece the previous step produced.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/regex.h"

namespace spectra {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
SplitBehavior parse_split_behavior(const std::string& name, const std::string& where);

struct PreTokenizeStep {
  enum Kind { ByteLevel, Split } kind = ByteLevel;
  bool add_prefix_space = false;       // ByteLevel
  std::shared_ptr<const Regex> regex;  // Split's pattern; ByteLevel's GPT-2 regex when use_regex
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
};

class PreTokenizer {
 public:
  explicit PreTokenizer(std::vector<PreTokenizeStep> steps) : steps_(std::move(steps)) {}
  PreTokenizer() = default;

  // Replaces `words` with the pieces of `text`. A piece is a view into `text`, or into `arena`
  // when a step prepended a space; both must outlive the views.
  void split(std::string_view text, std::vector<std::string_view>& words,
             std::deque<std::string>& arena) const;
  const std::vector<PreTokenizeStep>& steps() const { return steps_; }

 private:
  void apply(const PreTokenizeStep& step, std::string_view piece,
             std::vector<std::string_view>& out, std::deque<std::string>& arena) const;
  std::vector<PreTokenizeStep> steps_;
};

}  // namespace spectra
