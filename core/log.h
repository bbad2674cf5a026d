// Logging: plain lines on stderr (info/warn), only from rank 0 unless `all_ranks` is set.
// Progress output that users read (training steps) goes to stdout through fmt::print directly.
#pragma once
#include <fmt/format.h>

#include <cstdio>

namespace spectra::log {

void set_rank(int rank);
int rank();
void set_quiet(bool quiet);  // silence info lines (tests)
bool quiet();

template <typename... A>
void info(fmt::format_string<A...> f, A&&... args) {
  if (rank() != 0 || quiet()) return;
  fmt::print(stderr, "{}\n", fmt::format(f, std::forward<A>(args)...));
}
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... args) {
  fmt::print(stderr, "warning: {}\n", fmt::format(f, std::forward<A>(args)...));
}

}  // namespace spectra::log
