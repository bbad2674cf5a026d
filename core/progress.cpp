#include "core/progress.h"

#include <fmt/format.h>

#include <cmath>

namespace spectra {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  auto t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string format_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

double eta_seconds(double done, double total, double elapsed) {
  if (done <= 0 || elapsed <= 0) return -1;
  return (total - done) * elapsed / done;
}

}  // namespace spectra
