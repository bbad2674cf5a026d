#include "data/pretokenize.h"

#include <algorithm>

#include "core/error.h"

namespace spectra {

SplitBehavior parse_split_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  user_error("{}: unknown Split behavior '{}'", where, name);
}

namespace {
struct Span {
  size_t begin, end;
  bool flag;  // a match (input of the behaviors), or "remove" (their output)
};

// HF's NormalizedString::split: the regex's matches and the gaps between them cover the piece;
// the behavior decides which spans survive and how matches join their neighbours.
std::vector<Span> split_spans(const Regex& re, std::string_view s, SplitBehavior behavior,
                              bool invert) {
  std::vector<Span> all;
  if (s.empty()) {
    all.push_back({0, 0, false});
  } else {
    thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
    matches.clear();
    re.find_all(s, matches);
    size_t prev = 0;
    for (auto [b, e] : matches) {
      if (prev != b) all.push_back({prev, b, false});
      all.push_back({b, e, true});
      prev = e;
    }
    if (prev != s.size()) all.push_back({prev, s.size(), false});
  }
  if (invert)
    for (Span& sp : all) sp.flag = !sp.flag;
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (Span sp : all) out.push_back({sp.begin, sp.end, false});
      break;
    case SplitBehavior::Removed:
      out = all;
      break;
    case SplitBehavior::Contiguous:
      for (Span sp : all) {
        if (sp.flag == previous_match && !out.empty())
          out.back().end = sp.end;
        else
          out.push_back({sp.begin, sp.end, false});
        previous_match = sp.flag;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (Span sp : all) {
        if (sp.flag && !previous_match && !out.empty())
          out.back().end = sp.end;
        else
          out.push_back({sp.begin, sp.end, false});
        previous_match = sp.flag;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (size_t i = all.size(); i-- > 0;) {
        Span sp = all[i];
        if (sp.flag && !previous_match && !out.empty())
          out.back().begin = sp.begin;
        else
          out.push_back({sp.begin, sp.end, false});
        previous_match = sp.flag;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}
}  // namespace

void PreTokenizer::apply(const PreTokenizeStep& step, std::string_view piece,
                         std::vector<std::string_view>& out, std::deque<std::string>& arena) const {
  if (step.kind == PreTokenizeStep::ByteLevel) {
    // HF prepends the space to every non-empty piece that does not start with one.
    if (step.add_prefix_space && !piece.empty() && piece[0] != ' ') {
      std::string& spaced = arena.emplace_back(piece.size() + 1, ' ');
      piece.copy(spaced.data() + 1, piece.size());
      piece = spaced;
    }
    if (!step.regex) {
      if (!piece.empty()) out.push_back(piece);
      return;
    }
    thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
    matches.clear();
    step.regex->find_all(piece, matches);
    // The GPT-2 regex matches every character, so Isolated splitting is just its matches (plus
    // any gaps, kept for a regex that would not cover everything).
    size_t prev = 0;
    for (auto [b, e] : matches) {
      if (prev != b) out.push_back(piece.substr(prev, b - prev));
      if (e != b) out.push_back(piece.substr(b, e - b));
      prev = e;
    }
    if (prev != piece.size()) out.push_back(piece.substr(prev));
    return;
  }
  for (const Span& sp : split_spans(*step.regex, piece, step.behavior, step.invert))
    if (!sp.flag && sp.end > sp.begin) out.push_back(piece.substr(sp.begin, sp.end - sp.begin));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words,
                         std::deque<std::string>& arena) const {
  words.clear();
  if (text.empty()) return;
  words.push_back(text);
  std::vector<std::string_view> next;
  for (const PreTokenizeStep& step : steps_) {
    next.clear();
    for (std::string_view piece : words) apply(step, piece, next, arena);
    words.swap(next);
  }
}

}  // namespace spectra
