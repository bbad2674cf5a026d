// The NCCL half of dist::Group: collectives on device memory. Built from dist/cuda/nccl.cu with
// the CUDA backend, from dist/nocuda/nccl_stub.cpp otherwise. A communicator is created lazily,
// the first time a group sees a device tensor: rank 0 makes the unique id and MPI broadcasts it.
#pragma once
#include <mpi.h>

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
// The NCCL version as "2.28.9" (works without a GPU).
const char* version();

}  // namespace spectra::dist::nccl
