// Errors. A user mistake (bad flag, bad recipe, bad file) is a UserError: the CLI prints one
// `error:` line and exits with code 2. Anything else is an internal failure: exit code 1.
// Messages name what is wrong and, where known, the file, key or offset and what to do.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace spectra {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class UserError : public Error {
 public:
  using Error::Error;
};

// The rank that prefixes internal error messages (set once by dist).
void set_error_rank(int rank);
int error_rank();

template <typename... A>
[[noreturn]] void user_error(fmt::format_string<A...> f, A&&... args) {
  throw UserError(fmt::format(f, std::forward<A>(args)...));
}

namespace detail {
[[noreturn]] void check_failed(const char* cond, const char* file, int line,
                               const std::string& msg);
}  // namespace detail

}  // namespace spectra

// SPECTRA_CHECK(cond, "format {}", args...): an internal invariant; names the file, line and rank.
#define SPECTRA_CHECK(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond))                                                                              \
      ::spectra::detail::check_failed(#cond, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__)); \
  } while (0)
