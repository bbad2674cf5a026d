// The recipe key table (train/recipe.cpp's third pass binds the tree through it): every key
// with its target field in Recipe, its range or choices and flags, and the helpers that name
// keys in messages. Internal to train/.
#pragma once
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "train/recipe.h"

namespace spectra::recipe_keys {

struct Range {
  double lo, hi;
  bool lo_open, hi_open;
  std::string str() const {
    if (lo == 0 && lo_open && std::isinf(hi)) return "positive";
    if (lo == 0 && !lo_open && std::isinf(hi)) return ">= 0";
    return fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  }
  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
};
inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr Range kAny{-kInf, kInf, false, false};
inline constexpr Range kPositive{0, kInf, true, false};
inline constexpr Range kNonNeg{0, kInf, false, false};
inline constexpr Range kFraction{0, 1, false, true};    // [0, 1)
inline constexpr Range kUnit{0, 1, false, false};       // [0, 1]
inline constexpr Range kZeroStage{0, 3, false, false};  // 0 to 3

using Target =
    std::variant<int64_t*, int*, uint64_t*, double*, float*, bool*, std::string*, ModelKind*,
                 kernels::AttentionImpl*, std::vector<std::string>*, std::vector<double>*,
                 std::vector<LrStage>*, std::vector<WdStage>*, std::vector<EvalTask>*>;

enum Flags : unsigned { kRequired = 1, kPath = 2 };

struct Field {
  std::string key;  // "model.hidden"; in a stage table, the stage's key ("peak")
  Target target;
  Range range = kAny;
  const char* choices = nullptr;  // "a|b|c": the allowed strings
  unsigned flags = 0;
};

// Every recipe key, in the order Recipe::text lists them.
std::vector<Field> recipe_fields(Recipe& r);
// The keys of one entry of a list-of-mappings key (schedule.lr, schedule.weight_decay, eval.tasks).
std::vector<Field> stage_fields(LrStage& s);
std::vector<Field> stage_fields(WdStage& s);
std::vector<Field> stage_fields(EvalTask& t);

inline constexpr const char* kSections[] = {"model",    "data",    "optimizer",  "schedule",
                                            "parallel", "train",   "checkpoint", "log",
                                            "eval",     "quantize"};

inline std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }
inline std::string leaf_of(const std::string& key) { return key.substr(key.find('.') + 1); }

// "did you mean 'x'?" for a near miss, else the list of valid names.
std::string suggest(const std::string& key, const std::vector<std::string>& names);
// Whether v is one of "a|b|c".
bool is_choice(const std::string& v, const char* choices);

}  // namespace spectra::recipe_keys
