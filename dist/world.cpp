#include "dist/world.h"

#include <mpi.h>

#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "dist/roll_call.h"

namespace spectra::dist {

static bool g_we_initialized = false;

void init(int* argc, char*** argv) {
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Error("MPI_Init_thread failed");
    g_we_initialized = true;
    // Errors come back as codes that spectra checks, instead of MPI aborting on its own.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  open_roll_call();  // a hung collective names the ranks that do not answer
  int r = world_rank();
  set_error_rank(r);
  log::set_rank(r);
}

void finalize() {
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) return;
  close_roll_call();
  if (g_we_initialized) MPI_Finalize();
}

bool initialized() {
  int i = 0;
  MPI_Initialized(&i);
  return i != 0;
}

int world_rank() {
  if (!initialized()) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  if (!initialized()) return 1;
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

int local_rank() {
  for (const char* var :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  if (!initialized()) return 0;
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

void abort_job(int exit_code) {
  if (initialized() && world_size() > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

}  // namespace spectra::dist
