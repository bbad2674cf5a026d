// Rate and ETA for long work (training, data preparation, conversion): a steady clock, and
// formatting of durations ("1:02:03") and counts ("12.3k").
#pragma once
#include <chrono>
#include <string>

namespace spectra {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "0:07", "12:03", "3:02:01"
std::string format_count(double n);           // "950", "12.3k", "4.50M", "1.20G"
// Seconds left at a measured rate (done/elapsed); negative when unknown.
double eta_seconds(double done, double total, double elapsed);

}  // namespace spectra
