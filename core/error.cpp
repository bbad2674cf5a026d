#include "core/error.h"

namespace spectra {

static int g_error_rank = 0;
void set_error_rank(int rank) { g_error_rank = rank; }
int error_rank() { return g_error_rank; }

namespace detail {
void check_failed(const char* cond, const char* file, int line, const std::string& msg) {
  throw Error(
      fmt::format("{} (check `{}` failed at {}:{}, rank {})", msg, cond, file, line, g_error_rank));
}
}  // namespace detail

}  // namespace spectra
