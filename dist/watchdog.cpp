#include "dist/watchdog.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "dist/nccl.h"
#include "dist/roll_call.h"
#include "dist/world.h"

namespace spectra::dist {

namespace {

std::atomic<int64_t> g_wait_since_ms{0};  // 0: no wait in progress
std::atomic<const char*> g_what{""};
std::atomic<int64_t> g_step{-1};
std::atomic<double> g_timeout_s{0};
std::atomic<bool> g_started{false};
std::atomic<int> g_rank{0};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One line, straight to the file descriptor (no lock a hung main thread may hold), then out:
// MPI cannot end the job from a thread that is not its own, nor from a wait; the launcher can.
[[noreturn]] void end(const char* what, const char* why, bool device) {
  const int64_t step = g_step.load();
  char where[64] = "before the first step";
  if (step >= 0) std::snprintf(where, sizeof where, "step %lld", (long long)(step + 1));
  char line[1024];
  const int n = std::snprintf(line, sizeof line,
                              "error: rank %d: %s: %s (parallel.timeout_s): %s; the job ends, "
                              "continue from the last checkpoint with --resume auto\n",
                              g_rank.load(), where, what, why);
  if (n > 0) (void)!write(2, line, std::min(size_t(n), sizeof line - 1));
  if (device) nccl::abort_all();  // no kernel left waiting for a peer
  _exit(3);
}

void watch() {
  for (;;) {
    const double timeout = g_timeout_s.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(
        timeout > 0 && timeout < 10 ? int64_t(timeout * 100) : int64_t(1000)));
    if (timeout <= 0) continue;
    const std::string device = nccl::check(timeout);  // the GPU's collectives
    if (!device.empty()) end(device.c_str(), "a rank died or hangs", true);
    // A host wait past the timeout reports itself, naming the silent ranks (end_hung_job); this
    // is for a wait that cannot, once the roll call would have been over.
    const int64_t since = g_wait_since_ms.load();
    if (since == 0 || double(now_ms() - since) < 1e3 * (timeout + kRollCallSeconds + 2)) continue;
    char what[320];
    std::snprintf(what, sizeof what, "no answer from the other ranks for %.0f s in %s", timeout,
                  g_what.load());
    end(what, "a rank died or hangs", false);
  }
}

}  // namespace

void start_watchdog(double timeout_s) {
  g_rank = world_rank();
  g_timeout_s = timeout_s;
  if (timeout_s > 0 && !g_started.exchange(true)) std::thread(watch).detach();
}

void watchdog_step(int64_t step) { g_step = step; }
int64_t current_step() { return g_step.load(); }
double watchdog_timeout() { return g_timeout_s.load(); }

void end_hung_job(const char* what, const std::string& silent) {
  char waited[320];
  std::snprintf(waited, sizeof waited, "waited %.0f s in %s", g_timeout_s.load(), what);
  const std::string why =
      silent.empty() ? "every rank answers from a collective wait: they wait in different ones"
                     : silent + (silent.starts_with("ranks") ? " do" : " does") +
                           " not answer (stopped, dead or stuck outside the collectives)";
  end(waited, why.c_str(), false);
}

WaitMark::WaitMark(const char* what) {
  g_what = what;
  g_wait_since_ms = now_ms();
}

WaitMark::~WaitMark() { g_wait_since_ms = 0; }

}  // namespace spectra::dist
