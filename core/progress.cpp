#include "core/progress.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>

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

void ProgressLine::update(double done) {
  done_ = done;
  const double t = clock_.seconds();
  if (!enabled_ || t - last_ < (isatty(fileno(stderr)) ? 0.5 : 10.0)) return;
  last_ = t;
  print(done, false);
}

void ProgressLine::finish() {
  if (enabled_) print(done_, true);
  enabled_ = false;
}

void ProgressLine::print(double done, bool final_line) {
  const bool tty = isatty(fileno(stderr));
  const double t = clock_.seconds();
  fmt::print(stderr, "{}{}: {:.1f}% ({}/{} {}), {:.1f} {}/s, {} {}{}", tty ? "\r" : "", label_,
             total_ > 0 ? 100.0 * done / total_ : 100.0, format_count(done), format_count(total_),
             unit_, done / std::max(t, 1e-9), unit_, final_line ? "in" : "ETA",
             format_duration(final_line ? t : eta_seconds(done, total_, t)),
             tty && !final_line ? "\x1b[K" : "\n");
}

}  // namespace spectra
