// NCCL collectives on device tensors, on spectra's stream. The communicator's unique id is made
// by rank 0 of the group and broadcast over MPI.
#include <nccl.h>

#include <string>

#include "core/cuda/check.cuh"
#include "core/cuda_runtime.h"
#include "dist/nccl.h"

#define NCCL_CHECK(call)                                                                      \
  do {                                                                                        \
    ncclResult_t r_ = (call);                                                                 \
    if (r_ != ncclSuccess)                                                                    \
      throw ::spectra::Error(::fmt::format("NCCL error {} in {} at {}:{}, rank {}",           \
                                           ncclGetErrorString(r_), #call, __FILE__, __LINE__, \
                                           ::spectra::error_rank()));                         \
  } while (0)

namespace spectra::dist::nccl {

struct Comm {
  ncclComm_t comm;
  int size;
};

namespace {
ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32:
      return ncclFloat32;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::u8:
      return ncclUint8;
    case DType::u32:
      return ncclUint32;
    default:
      throw Error(fmt::format("NCCL collectives do not take {} tensors", dtype_name(t)));
  }
}
cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::stream()); }
}  // namespace

Comm* create(MPI_Comm mpi_comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(mpi_comm, &rank);
  MPI_Comm_size(mpi_comm, &size);
  ncclUniqueId id;
  if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi_comm) != MPI_SUCCESS)
    throw Error("MPI_Bcast of the NCCL unique id failed");
  auto* c = new Comm{nullptr, size};
  NCCL_CHECK(ncclCommInitRank(&c->comm, size, id, rank));
  return c;
}

void destroy(Comm* c) {
  if (!c) return;
  ncclCommDestroy(c->comm);
  delete c;
}

void all_reduce(Comm* c, Tensor& t, ReduceOp op) {
  NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()),
                           op == ReduceOp::sum ? ncclSum : ncclMax, c->comm, stream()));
}

void all_gather(Comm* c, const Tensor& local, Tensor& out) {
  NCCL_CHECK(ncclAllGather(local.raw(), out.raw(), size_t(local.numel()), nccl_type(local.dtype()),
                           c->comm, stream()));
}

void reduce_scatter(Comm* c, const Tensor& full, Tensor& local) {
  NCCL_CHECK(ncclReduceScatter(full.raw(), local.raw(), size_t(local.numel()),
                               nccl_type(full.dtype()), ncclSum, c->comm, stream()));
}

void broadcast(Comm* c, Tensor& t, int root) {
  NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), root, c->comm,
                           stream()));
}

const char* version() {
  static std::string v = [] {
    int code = 0;
    ncclGetVersion(&code);
    return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
           std::to_string(code % 100);
  }();
  return v.c_str();
}

}  // namespace spectra::dist::nccl
