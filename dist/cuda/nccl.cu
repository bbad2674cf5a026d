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

// ---- asynchronous: a second stream, ordered after spectra's by an event ------------------------

struct Event {
  cudaEvent_t done;
};

namespace {
cudaStream_t comm_stream() {
  static cudaStream_t s = [] {
    cudaStream_t c;
    CUDA_CHECK(cudaStreamCreateWithFlags(&c, cudaStreamNonBlocking));
    return c;
  }();
  return s;
}
// The communication stream waits for everything queued on spectra's stream so far (the
// gradients the backward pass has just written).
cudaStream_t begin_async() {
  cudaEvent_t ready;
  CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(ready, stream()));
  CUDA_CHECK(cudaStreamWaitEvent(comm_stream(), ready, 0));
  CUDA_CHECK(cudaEventDestroy(ready));  // released once the wait has been satisfied
  return comm_stream();
}
Event* end_async() {
  auto* e = new Event;
  CUDA_CHECK(cudaEventCreateWithFlags(&e->done, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(e->done, comm_stream()));
  return e;
}
}  // namespace

Event* all_reduce_async(Comm* c, Tensor& t) {
  cudaStream_t s = begin_async();
  NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum,
                           c->comm, s));
  return end_async();
}

// Uneven parts: one ncclReduce per owner, fused into one launch by the group call.
Event* reduce_scatter_async(Comm* c, const Tensor& full, Tensor& local,
                            const std::vector<int64_t>& counts) {
  cudaStream_t s = begin_async();
  const size_t esize = dtype_size(full.dtype());
  NCCL_CHECK(ncclGroupStart());
  int64_t off = 0;
  for (int r = 0; r < int(counts.size()); r++) {
    const char* src = static_cast<const char*>(full.raw()) + size_t(off) * esize;
    NCCL_CHECK(ncclReduce(src, local.raw(), size_t(counts[size_t(r)]), nccl_type(full.dtype()),
                          ncclSum, r, c->comm, s));
    off += counts[size_t(r)];
  }
  NCCL_CHECK(ncclGroupEnd());
  return end_async();
}

// Uneven parts: one in-place ncclBroadcast per owner in a group call.
Event* all_gather_async(Comm* c, Tensor& full, const std::vector<int64_t>& counts) {
  cudaStream_t s = begin_async();
  const size_t esize = dtype_size(full.dtype());
  NCCL_CHECK(ncclGroupStart());
  int64_t off = 0;
  for (int r = 0; r < int(counts.size()); r++) {
    char* p = static_cast<char*>(full.raw()) + size_t(off) * esize;
    NCCL_CHECK(
        ncclBroadcast(p, p, size_t(counts[size_t(r)]), nccl_type(full.dtype()), r, c->comm, s));
    off += counts[size_t(r)];
  }
  NCCL_CHECK(ncclGroupEnd());
  return end_async();
}

bool done(Event* e) {
  cudaError_t r = cudaEventQuery(e->done);
  if (r == cudaErrorNotReady) return false;
  CUDA_CHECK(r);
  return true;
}

void wait(Event* e) { CUDA_CHECK(cudaStreamWaitEvent(stream(), e->done, 0)); }

void release(Event* e) {
  if (!e) return;
  cudaEventDestroy(e->done);
  delete e;
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
