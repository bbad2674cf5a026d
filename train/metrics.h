// Metrics as JSON Lines: one object per logged event ({"event":"train","step":...}), flushed
// after each line so a killed run keeps everything it logged. Rank 0 writes the path given; a
// path containing "{rank}" gives every rank its own file (e.g. runs/x/metrics-{rank}.jsonl).
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace spectra {

class MetricsLog {
 public:
  MetricsLog() = default;
  MetricsLog(const std::string& path, int rank);  // "" = disabled; appends
  void write(const nlohmann::json& record);
  bool enabled() const { return out_.is_open(); }

 private:
  std::ofstream out_;
};

}  // namespace spectra
