#include "dist/watchdog.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "dist/nccl.h"
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

void watch() {
  for (;;) {
    const double timeout = g_timeout_s.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(
        timeout > 0 && timeout < 10 ? int64_t(timeout * 100) : int64_t(1000)));
    if (timeout <= 0) continue;
    const int64_t since = g_wait_since_ms.load();
    const std::string device = nccl::check(timeout);  // the GPU's collectives
    if (device.empty() && (since == 0 || double(now_ms() - since) < 1e3 * timeout)) continue;
    const int64_t step = g_step.load();
    // One line, straight to the file descriptor (no lock a hung main thread may hold), then out:
    // MPI cannot end the job from a thread that is not its own; the launcher can.
    char where[64] = "before the first step";
    if (step >= 0) std::snprintf(where, sizeof where, "step %lld", (long long)(step + 1));
    char what[320];
    if (device.empty())
      std::snprintf(what, sizeof what, "no answer from the other ranks for %.0f s in %s", timeout,
                    g_what.load());
    else
      std::snprintf(what, sizeof what, "%s", device.c_str());
    char line[640];
    const int n = std::snprintf(line, sizeof line,
                                "error: rank %d: %s: %s (parallel.timeout_s): a rank died or "
                                "hangs; the job ends, continue from the last checkpoint with "
                                "--resume auto\n",
                                g_rank.load(), where, what);
    if (n > 0) (void)!write(2, line, size_t(n));
    if (!device.empty()) nccl::abort_all();  // no kernel left waiting for a peer
    _exit(3);
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

WaitMark::WaitMark(const char* what) {
  g_what = what;
  g_wait_since_ms = now_ms();
}

WaitMark::~WaitMark() { g_wait_since_ms = 0; }

}  // namespace spectra::dist
