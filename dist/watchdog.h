// The collective watchdog: a job whose rank died without its launcher noticing, or hangs, must
// end instead of leaving every other rank waiting forever in a collective. A host wait on the
// group (dist/group.cpp) that lasts longer than the timeout (parallel.timeout_s) calls the roll
// (dist/roll_call.h) and ends the process with one error line naming this rank, the training
// step, the collective and the ranks that did not answer, exit code 3. The launcher (mpirun) then
// ends the other ranks, so no process is left behind; `spectra train --resume auto` continues
// from the last checkpoint. (A rank that is killed is reported by mpirun itself, and a rank that
// throws ends the job through MPI_Abort, tools/main.cpp; this covers the silence in between.)
// Each wait is also marked for a thread, which ends the process the same way (without a roll
// call) if a marked wait outlasts the timeout by the roll call's time and more: it covers a wait
// that cannot poll. Device (NCCL) collectives never block the host: the same thread asks
// dist/nccl.h for an error NCCL reports asynchronously or a collective that has not completed
// within the timeout, prints the line, and aborts the NCCL communicators before exiting (not yet
// run on several GPUs).
#pragma once
#include <cstdint>
#include <string>

namespace spectra::dist {

// Starts the watchdog thread once for this process (later calls change the timeout); a timeout
// <= 0 turns it off.
void start_watchdog(double timeout_s);
// The step the trainer is on (0-based), for the error line; current_step() reads it back (-1
// before the first).
void watchdog_step(int64_t step);
int64_t current_step();
// The timeout in force (0: none).
double watchdog_timeout();

// A host wait in `what` outlasted the timeout: prints the error line, naming `silent`, the ranks
// that did not answer the roll call ("" if every rank did), and exits with code 3.
[[noreturn]] void end_hung_job(const char* what, const std::string& silent);

// Marks a blocking wait for the duration of a scope.
class WaitMark {
 public:
  explicit WaitMark(const char* what);
  ~WaitMark();
  WaitMark(const WaitMark&) = delete;
  WaitMark& operator=(const WaitMark&) = delete;
};

}  // namespace spectra::dist
