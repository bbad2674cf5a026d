// The NCCL half of dist::Group: collectives on device memory. Built from dist/cuda/nccl.cu with
// the CUDA backend, from dist/nocuda/nccl_stub.cpp otherwise. A communicator is created lazily,
// the first time a group sees a device tensor: rank 0 makes the unique id and MPI broadcasts it.
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

#include "core/tensor.h"
#include "dist/group.h"

namespace spectra::dist::nccl {

struct Comm;  // opaque: an ncclComm_t
// Collective over `comm` (every rank of mpi_comm must call it).
Comm* create(MPI_Comm mpi_comm);
void destroy(Comm* c);
void all_reduce(Comm* c, Tensor& t, ReduceOp op);
void all_gather(Comm* c, const Tensor& local, Tensor& out);
void reduce_scatter(Comm* c, const Tensor& full, Tensor& local);
void broadcast(Comm* c, Tensor& t, int root);
// On the communication stream, after what spectra's stream has queued so far (see Group's
// *_async). The returned event marks completion; wait() orders spectra's stream after it.
struct Event;
Event* all_reduce_async(Comm* c, Tensor& t);
Event* reduce_scatter_async(Comm* c, const Tensor& full, Tensor& local,
                            const std::vector<int64_t>& counts);
Event* all_gather_async(Comm* c, Tensor& full, const std::vector<int64_t>& counts);
bool done(Event* e);
void wait(Event* e);
void release(Event* e);
// The NCCL version as "2.28.9" (works without a GPU).
const char* version();

// For the watchdog thread (dist/watchdog.h), safe beside the main thread: what went wrong in the
// device collectives, if anything ("" if nothing): an error NCCL reports asynchronously, or a
// collective queued more than timeout_s ago that has not completed (a peer died or hangs). Then
// abort_all() aborts every communicator, so that no kernel waits for a peer forever.
std::string check(double timeout_s);
void abort_all();

}  // namespace spectra::dist::nccl
