// Built without the CUDA backend: device tensors never reach dist, so these only report that.
#include "dist/nccl.h"

namespace spectra::dist::nccl {

[[noreturn]] static void no_nccl() {
  user_error("device collectives need spectra built with CUDA and NCCL");
}
Comm* create(MPI_Comm) { no_nccl(); }
void destroy(Comm*) {}
void all_reduce(Comm*, Tensor&, ReduceOp) { no_nccl(); }
void all_gather(Comm*, const Tensor&, Tensor&) { no_nccl(); }
void reduce_scatter(Comm*, const Tensor&, Tensor&) { no_nccl(); }
void broadcast(Comm*, Tensor&, int) { no_nccl(); }
const char* version() { return "none"; }

}  // namespace spectra::dist::nccl
