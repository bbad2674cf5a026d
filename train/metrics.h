// Metrics as JSON Lines: one object per logged event ({"event":"train","step":...}), flushed
// after each line so a killed run keeps everything it logged.
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace spectra {

class MetricsLog {
 public:
  MetricsLog() = default;
  explicit MetricsLog(const std::string& path);  // "" = disabled; appends
  void write(const nlohmann::json& record);
  bool enabled() const { return out_.is_open(); }

 private:
  std::ofstream out_;
};

}  // namespace spectra
