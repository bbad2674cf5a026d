// The process world. MPI always starts the job (so mpirun and srun both work); one process
// without a launcher is a world of size 1. The world is a grid: tensor-parallel groups of `tp`
// consecutive ranks, data-parallel groups across them.
#pragma once

namespace spectra::dist {

// Initializes MPI once (idempotent) and sets the rank used in logs and error messages.
void init(int* argc, char*** argv);
void finalize();
bool initialized();
int world_rank();
int world_size();
// Rank within this node (the GPU a process uses), from the launcher's environment or MPI.
int local_rank();
// Ends every rank of the job with this exit code (a failing rank must not leave others hung).
[[noreturn]] void abort_job(int exit_code);

}  // namespace spectra::dist
