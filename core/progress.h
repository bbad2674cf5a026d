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

// One progress line on stderr for long work: "label: 40.0% (400/1000 unit), 12.3 unit/s, ETA
// 0:49", rewritten in place on a terminal and printed every 10 s otherwise, plus a final line.
class ProgressLine {
 public:
  ProgressLine(std::string label, double total, std::string unit, bool enabled = true)
      : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled) {}
  void update(double done);
  void finish();

 private:
  void print(double done, bool final_line);
  std::string label_, unit_;
  double total_, last_ = -1, done_ = 0;
  bool enabled_;
  Stopwatch clock_;
};

std::string format_duration(double seconds);  // "0:07", "12:03", "3:02:01"
std::string format_count(double n);           // "950", "12.3k", "4.50M", "1.20G"
// Seconds left at a measured rate (done/elapsed); negative when unknown.
double eta_seconds(double done, double total, double elapsed);

}  // namespace spectra
