// The collective watchdog: a job whose rank died without its launcher noticing, or hangs, must
// end instead of leaving every other rank waiting forever in a collective. Each blocking wait on
// the group (dist/group.h) is marked; a thread checks the mark, and a wait longer than the
// timeout (parallel.timeout_s) prints one error line naming this rank, the training step and the
// collective, and exits with code 3. The launcher (mpirun) then ends the other ranks, so no
// process is left behind; `spectra train --resume auto` continues from the last checkpoint.
// (A rank that is killed is reported by mpirun itself, and a rank that throws ends the job through
// MPI_Abort, tools/main.cpp; this covers the silence in between.) Device (NCCL) collectives never
// block the host: the same thread asks dist/nccl.h for an error NCCL reports asynchronously or a
// collective that has not completed within the timeout, prints the line, and aborts the NCCL
// communicators before exiting (not yet run on several GPUs).
#pragma once
#include <cstdint>

namespace spectra::dist {

// Starts the watchdog thread once for this process (later calls change the timeout); a timeout
// <= 0 turns it off.
void start_watchdog(double timeout_s);
// The step the trainer is on (0-based), for the error line; current_step() reads it back (-1
// before the first).
void watchdog_step(int64_t step);
int64_t current_step();

// Marks a blocking wait for the duration of a scope.
class WaitMark {
 public:
  explicit WaitMark(const char* what);
  ~WaitMark();
  WaitMark(const WaitMark&) = delete;
  WaitMark& operator=(const WaitMark&) = delete;
};

}  // namespace spectra::dist
