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
struct Event {};
Event* all_reduce_async(Comm*, Tensor&) { no_nccl(); }
Event* reduce_scatter_async(Comm*, const Tensor&, Tensor&, const std::vector<int64_t>&) {
  no_nccl();
}
Event* all_gather_async(Comm*, Tensor&, const std::vector<int64_t>&) { no_nccl(); }
bool done(Event*) { return true; }
void wait(Event*) {}
void release(Event*) {}
const char* version() { return "none"; }
std::string check(double) { return ""; }
void abort_all() {}

}  // namespace spectra::dist::nccl
