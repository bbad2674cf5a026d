#include "train/metrics.h"

#include <filesystem>

#include "core/error.h"

namespace spectra {

MetricsLog::MetricsLog(const std::string& path) {
  if (path.empty()) return;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  out_.open(path, std::ios::app);
  if (!out_) user_error("log.metrics: cannot open '{}' for writing", path);
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!out_.is_open()) return;
  out_ << record.dump() << '\n';
  out_.flush();
}

}  // namespace spectra
