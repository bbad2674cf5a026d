// The learning-rate and weight-decay schedules of train/recipe.h: stages by fraction of training.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "train/recipe.h"

namespace spectra {

namespace {
template <class Stage>
size_t stage_at(const std::vector<Stage>& stages, double f) {
  size_t i = 0;
  while (i + 1 < stages.size() && stages[i + 1].start <= f) i++;
  return i;
}
double fraction(int64_t step, int64_t total) {
  return total > 0 ? std::clamp(double(step) / double(total), 0.0, 1.0) : 0.0;
}
}  // namespace

double lr_at(const Recipe::Schedule& s, int64_t step, int64_t total_steps) {
  if (s.lr.empty()) return 0;
  if (step < s.warmup_steps) return s.lr[0].peak * double(step + 1) / double(s.warmup_steps);
  double f = fraction(step, total_steps);
  size_t i = stage_at(s.lr, f);
  const LrStage& st = s.lr[i];
  double end = i + 1 < s.lr.size() ? s.lr[i + 1].start : 1.0;
  double p = std::clamp((f - st.start) / (end - st.start), 0.0, 1.0);
  double g = st.shape == "cosine"   ? 0.5 * (1 + std::cos(std::numbers::pi * p))
             : st.shape == "linear" ? 1 - p
                                    : 1.0;
  return st.peak * (st.floor + (1 - st.floor) * g);
}

double weight_decay_at(const Recipe::Schedule& s, int64_t step, int64_t total_steps) {
  if (s.weight_decay.empty()) return 0;
  return s.weight_decay[stage_at(s.weight_decay, fraction(step, total_steps))].value;
}

}  // namespace spectra
