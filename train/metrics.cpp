#include "train/metrics.h"

#include <filesystem>

#include "core/error.h"

namespace spectra {

MetricsLog::MetricsLog(const std::string& templ, int rank) {
  std::string path = templ;
  if (size_t at = path.find("{rank}"); at != std::string::npos)
    path.replace(at, 6, std::to_string(rank));
  else if (rank != 0)
    return;
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
