#include "data/text.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace spectra {

static std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) user_error("{}: cannot open ({})", path, std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      user_error("{}: not valid gzip data ({}); re-download or decompress it", path, msg);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  // gzread stops silently at a truncated stream: gzclose reports it.
  if (gzclose(f) != Z_OK) user_error("{}: truncated gzip stream; re-download the file", path);
  return out;
}

std::string read_text_file(const std::string& path) {
  if (path.size() > 3 && path.ends_with(".gz")) return read_gzip(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("{}: cannot open ({})", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace spectra
