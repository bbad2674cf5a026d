#include "core/log.h"

namespace spectra::log {
static int g_rank = 0;
static bool g_quiet = false;
void set_rank(int r) { g_rank = r; }
int rank() { return g_rank; }
void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }
}  // namespace spectra::log
