// NCCL collectives on device tensors, on spectra's stream. The communicator's unique id is made
// by rank 0 of the group and broadcast over MPI.
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

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
  int device;  // the GPU it runs on (the watchdog thread must make it current)
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

// What the watchdog thread (dist/watchdog.h) looks at: every communicator, and every collective
// still in flight (an event recorded after it on its stream, and when it was queued). A device
// collective never blocks the host where a WaitMark would see it: a failed peer shows in
// ncclCommGetAsyncError, a hung one as a collective that never completes.
std::mutex g_mutex;
std::vector<Comm*> g_comms;
struct InFlight {
  cudaEvent_t done;
  int64_t since_ms;
  const char* what;
  int device;
};
std::deque<InFlight> g_in_flight;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Drops the collectives at the front of the queue that have completed (g_mutex held).
void drop_completed() {
  while (!g_in_flight.empty()) {
    const InFlight& f = g_in_flight.front();
    cudaSetDevice(f.device);
    if (cudaEventQuery(f.done) == cudaErrorNotReady) return;
    cudaEventDestroy(f.done);
    g_in_flight.pop_front();
  }
}

// After a collective was queued on `s` (which also keeps the queue short without a watchdog).
void track(Comm* c, cudaStream_t s, const char* what) {
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(e, s));
  std::lock_guard<std::mutex> lock(g_mutex);
  drop_completed();
  g_in_flight.push_back({e, now_ms(), what, c->device});
}
}  // namespace

std::string check(double timeout_s) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (Comm* c : g_comms) {
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(c->comm, &state) == ncclSuccess && state != ncclSuccess &&
        state != ncclInProgress)
      return fmt::format("NCCL reports {} on a communicator of {} ranks", ncclGetErrorString(state),
                         c->size);
  }
  // Collectives complete in the order they were queued: the oldest left is the one to time.
  drop_completed();
  if (!g_in_flight.empty() && double(now_ms() - g_in_flight.front().since_ms) >= 1e3 * timeout_s)
    return fmt::format("no answer from the other ranks for {:.0f} s in an NCCL {}", timeout_s,
                       g_in_flight.front().what);
  return "";
}

void abort_all() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (Comm* c : g_comms) ncclCommAbort(c->comm);
  g_comms.clear();
}

Comm* create(MPI_Comm mpi_comm) {
  int rank = 0, size = 1;
  MPI_Comm_rank(mpi_comm, &rank);
  MPI_Comm_size(mpi_comm, &size);
  ncclUniqueId id;
  if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi_comm) != MPI_SUCCESS)
    throw Error("MPI_Bcast of the NCCL unique id failed");
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  auto* c = new Comm{nullptr, size, device};
  NCCL_CHECK(ncclCommInitRank(&c->comm, size, id, rank));
  std::lock_guard<std::mutex> lock(g_mutex);
  g_comms.push_back(c);
  return c;
}

void destroy(Comm* c) {
  if (!c) return;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_comms.erase(std::remove(g_comms.begin(), g_comms.end(), c), g_comms.end());
  }
  ncclCommDestroy(c->comm);
  delete c;
}

void all_reduce(Comm* c, Tensor& t, ReduceOp op) {
  NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()),
                           op == ReduceOp::sum ? ncclSum : ncclMax, c->comm, stream()));
  track(c, stream(), "all_reduce");
}

void all_gather(Comm* c, const Tensor& local, Tensor& out) {
  NCCL_CHECK(ncclAllGather(local.raw(), out.raw(), size_t(local.numel()), nccl_type(local.dtype()),
                           c->comm, stream()));
  track(c, stream(), "all_gather");
}

void reduce_scatter(Comm* c, const Tensor& full, Tensor& local) {
  NCCL_CHECK(ncclReduceScatter(full.raw(), local.raw(), size_t(local.numel()),
                               nccl_type(full.dtype()), ncclSum, c->comm, stream()));
  track(c, stream(), "reduce_scatter");
}

void broadcast(Comm* c, Tensor& t, int root) {
  NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), root, c->comm,
                           stream()));
  track(c, stream(), "broadcast");
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
Event* end_async(Comm* c, const char* what) {
  track(c, comm_stream(), what);
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
  return end_async(c, "all_reduce");
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
  return end_async(c, "reduce_scatter");
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
  return end_async(c, "all_gather");
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
