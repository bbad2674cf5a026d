#include "dist/group.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "dist/nccl.h"
#include "dist/roll_call.h"
#include "dist/watchdog.h"
#include "dist/world.h"

namespace spectra::dist {

namespace {
std::atomic<uint64_t> g_bytes[kCollectives], g_calls[kCollectives];

// Fault injection for the tests: SPECTRA_TEST_THROW_IN_COLLECTIVE=R:S makes world rank R throw
// from the first collective it starts in training step S (1-based, as the log counts).
void maybe_fail(Collective c) {
  static const std::pair<int, int64_t> at = [] {
    const char* v = std::getenv("SPECTRA_TEST_THROW_IN_COLLECTIVE");
    int rank = -1;
    long long step = -1;
    if (v && std::sscanf(v, "%d:%lld", &rank, &step) != 2) rank = -1;
    return std::pair<int, int64_t>{rank, step};
  }();
  if (at.first >= 0 && at.first == world_rank() && current_step() + 1 == at.second)
    throw Error(fmt::format("injected failure in {} (SPECTRA_TEST_THROW_IN_COLLECTIVE)",
                            collective_name(c)));
}

void count(Collective c, size_t bytes) {
  maybe_fail(c);
  g_bytes[int(c)].fetch_add(bytes, std::memory_order_relaxed);
  g_calls[int(c)].fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

const char* collective_name(Collective c) {
  static const char* names[kCollectives] = {"all_reduce", "all_gather", "reduce_scatter",
                                            "broadcast", "gather"};
  return names[int(c)];
}

Traffic Traffic::operator-(const Traffic& before) const {
  Traffic d;
  for (int i = 0; i < kCollectives; i++) {
    d.bytes[i] = bytes[i] - before.bytes[i];
    d.calls[i] = calls[i] - before.calls[i];
  }
  return d;
}

Traffic traffic() {
  Traffic t;
  for (int i = 0; i < kCollectives; i++) {
    t.bytes[i] = g_bytes[i].load(std::memory_order_relaxed);
    t.calls[i] = g_calls[i].load(std::memory_order_relaxed);
  }
  return t;
}

void reset_traffic() {
  for (int i = 0; i < kCollectives; i++) g_bytes[i] = g_calls[i] = 0;
}

namespace {

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(fmt::format("MPI error in {}: {} (rank {})", call, std::string(msg, size_t(len)),
                          error_rank()));
}
#define MPI_CHECK(call) mpi_check((call), #call)

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
    case DType::u8:
      return MPI_UINT8_T;
    case DType::u16:
      return MPI_UINT16_T;
    case DType::u32:
      return MPI_UINT32_T;
    default:
      throw Error(fmt::format("MPI collectives do not take {} host tensors", dtype_name(t)));
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::sum ? MPI_SUM : MPI_MAX; }

// MPI counts are int. Every collective, blocking or not, converts its counts here: a count of
// 2^31 or more is an error that says so, never a count wrapped to a negative or smaller one.
int mpi_count(int64_t n, const char* collective) {
  SPECTRA_CHECK(n >= 0 && n <= INT_MAX, "{}: {} elements in one MPI call (2^31 or more)",
                collective, n);
  return int(n);
}

// Uneven parts one after another: counts, and (when asked) displacements, as MPI's ints. The
// engine's buckets are far below 2^31 elements; say so if one is not.
std::vector<int> mpi_counts(const std::vector<int64_t>& counts, std::vector<int>* displs,
                            const char* collective) {
  std::vector<int> out;
  int64_t off = 0;
  for (int64_t c : counts) {
    out.push_back(mpi_count(c, collective));
    if (displs) displs->push_back(mpi_count(off, collective));
    off += c;
  }
  mpi_count(off, collective);  // the whole buffer, too
  return out;
}

// Every host collective waits here, polling: between polls it answers roll calls
// (dist/roll_call.h), and past parallel.timeout_s it calls the roll and ends the process with
// one line naming the ranks that did not answer. (Inside MPI's blocking calls a rank could do
// neither.)
void wait_host(MPI_Request& request, const char* what) {
  WaitMark mark(what);  // the watchdog thread's backstop
  const double timeout = watchdog_timeout();
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    answer_roll_calls();
    if (timeout > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout)
      end_hung_job(what, call_the_roll(kRollCallSeconds));
    std::this_thread::yield();
  }
}

}  // namespace

struct Group::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;
  mutable nccl::Comm* nccl = nullptr;
  nccl::Comm* device_comm() const {
    if (!nccl) nccl = nccl::create(comm);
    return nccl;
  }
  ~Impl() {
    if (nccl) nccl::destroy(nccl);
    int fin = 0;
    MPI_Finalized(&fin);
    if (owned && !fin) MPI_Comm_free(&comm);
  }
};

Group Group::world() {
  SPECTRA_CHECK(initialized(), "dist::init must run before Group::world()");
  Group g;
  g.impl_ = std::make_shared<Impl>();
  g.impl_->comm = MPI_COMM_WORLD;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g.rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g.size_));
  return g;
}

Group Group::split(int color, int key) const {
  Group g;
  g.impl_ = std::make_shared<Impl>();
  MPI_CHECK(MPI_Comm_split(impl_->comm, color, key, &g.impl_->comm));
  g.impl_->owned = true;
  MPI_CHECK(MPI_Comm_rank(g.impl_->comm, &g.rank_));
  MPI_CHECK(MPI_Comm_size(g.impl_->comm, &g.size_));
  return g;
}

void Group::all_reduce(Tensor& t, ReduceOp op) const {
  if (size_ == 1) return;
  count(Collective::all_reduce, t.nbytes());
  if (t.is_cuda()) return nccl::all_reduce(impl_->device_comm(), t, op);
  MPI_Request r;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.raw(), mpi_count(t.numel(), "all_reduce"),
                           mpi_type(t.dtype()), mpi_op(op), impl_->comm, &r));
  wait_host(r, "all_reduce");
}

void Group::all_gather(const Tensor& local, Tensor& out) const {
  SPECTRA_CHECK(out.numel() == local.numel() * size_ && out.dtype() == local.dtype(),
                "all_gather: {} from {} over {} ranks", out.str(), local.str(), size_);
  if (size_ == 1) return out.copy_from(local.view(out.shape()));
  count(Collective::all_gather, local.nbytes());
  if (local.is_cuda()) return nccl::all_gather(impl_->device_comm(), local, out);
  // In place when `local` is this rank's slot of `out` (ZeRO's gather of updated weights).
  const bool in_place =
      local.raw() == static_cast<char*>(out.raw()) + size_t(rank_) * local.nbytes();
  const int n = mpi_count(local.numel(), "all_gather");
  MPI_Request r;
  MPI_CHECK(MPI_Iallgather(in_place ? MPI_IN_PLACE : local.raw(), n, mpi_type(local.dtype()),
                           out.raw(), n, mpi_type(local.dtype()), impl_->comm, &r));
  wait_host(r, "all_gather");
}

void Group::gather(const Tensor& local, Tensor& out, int root) const {
  const Tensor host = local.to(Device::cpu());
  if (rank_ == root)
    SPECTRA_CHECK(out.numel() == local.numel() * size_ && out.dtype() == local.dtype() &&
                      out.device().is_cpu(),
                  "gather: {} from {} over {} ranks", out.str(), local.str(), size_);
  if (size_ == 1) return out.copy_from(host.view(out.shape()));
  count(Collective::gather, host.nbytes());
  const int n = mpi_count(host.numel(), "gather");
  MPI_Request r;
  MPI_CHECK(MPI_Igather(host.raw(), n, mpi_type(host.dtype()), rank_ == root ? out.raw() : nullptr,
                        n, mpi_type(host.dtype()), root, impl_->comm, &r));
  wait_host(r, "gather");
}

void Group::reduce_scatter(const Tensor& full, Tensor& local) const {
  SPECTRA_CHECK(full.numel() == local.numel() * size_ && full.dtype() == local.dtype(),
                "reduce_scatter: {} into {} over {} ranks", full.str(), local.str(), size_);
  if (size_ == 1) return local.copy_from(full.view(local.shape()));
  count(Collective::reduce_scatter, full.nbytes());
  if (full.is_cuda()) return nccl::reduce_scatter(impl_->device_comm(), full, local);
  MPI_Request r;
  MPI_CHECK(MPI_Ireduce_scatter_block(full.raw(), local.raw(),
                                      mpi_count(local.numel(), "reduce_scatter"),
                                      mpi_type(full.dtype()), MPI_SUM, impl_->comm, &r));
  wait_host(r, "reduce_scatter");
}

void Group::broadcast(Tensor& t, int root) const {
  if (size_ == 1) return;
  if (rank_ == root) count(Collective::broadcast, t.nbytes());
  if (t.is_cuda()) return nccl::broadcast(impl_->device_comm(), t, root);
  MPI_Request r;
  MPI_CHECK(MPI_Ibcast(t.raw(), mpi_count(int64_t(t.nbytes()), "broadcast (bytes)"), MPI_BYTE, root,
                       impl_->comm, &r));
  wait_host(r, "broadcast");
}

void Group::barrier() const {
  if (size_ == 1) return;
  MPI_Request r;
  MPI_CHECK(MPI_Ibarrier(impl_->comm, &r));
  wait_host(r, "barrier");
}

std::string Group::broadcast(const std::string& s, int root) const {
  if (size_ == 1) return s;
  if (rank_ == root) count(Collective::broadcast, sizeof(int64_t) + s.size());
  int64_t n = int64_t(s.size());
  MPI_Request r;
  MPI_CHECK(MPI_Ibcast(&n, 1, MPI_INT64_T, root, impl_->comm, &r));
  wait_host(r, "broadcast");
  std::string out = rank_ == root ? s : std::string(size_t(n), '\0');
  if (n == 0) return out;
  MPI_CHECK(MPI_Ibcast(out.data(), mpi_count(n, "broadcast"), MPI_CHAR, root, impl_->comm, &r));
  wait_host(r, "broadcast");
  return out;
}

// ---- asynchronous collectives ----------------------------------------------------------------

struct Pending::State {
  MPI_Request request = MPI_REQUEST_NULL;
  nccl::Event* event = nullptr;
  std::vector<int> counts, displs;  // MPI reads them until the request completes
};

Pending::Pending() = default;
Pending::Pending(Pending&&) noexcept = default;
Pending& Pending::operator=(Pending&& o) noexcept {
  if (this != &o) {
    if (state_) wait();
    state_ = std::move(o.state_);
  }
  return *this;
}
Pending::~Pending() {
  if (!state_) return;
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) return;
  try {
    wait();
  } catch (...) {  // a destructor must not throw; the failure already surfaced elsewhere
  }
}

bool Pending::test() {
  if (!state_) return true;
  if (state_->event) {
    if (!nccl::done(state_->event)) return false;
  } else {
    int flag = 0;
    MPI_CHECK(MPI_Test(&state_->request, &flag, MPI_STATUS_IGNORE));
    if (!flag) return false;
  }
  wait();
  return true;
}

void Pending::wait() {
  if (!state_) return;
  std::unique_ptr<State> s = std::move(state_);
  if (s->event) {
    nccl::wait(s->event);
    nccl::release(s->event);
  } else {
    wait_host(s->request, "a gradient bucket's collective");
  }
}

Pending Group::all_reduce_async(Tensor& t) const {
  Pending p;
  if (size_ == 1) return p;
  count(Collective::all_reduce, t.nbytes());
  p.state_ = std::make_unique<Pending::State>();
  if (t.is_cuda()) {
    p.state_->event = nccl::all_reduce_async(impl_->device_comm(), t);
    return p;
  }
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.raw(), mpi_count(t.numel(), "all_reduce_async"),
                           mpi_type(t.dtype()), MPI_SUM, impl_->comm, &p.state_->request));
  return p;
}

Pending Group::reduce_scatter_async(const Tensor& full, Tensor& local,
                                    const std::vector<int64_t>& counts) const {
  SPECTRA_CHECK(int(counts.size()) == size_ && local.numel() == counts[size_t(rank_)] &&
                    full.dtype() == local.dtype(),
                "reduce_scatter_async: {} into {} over {} ranks", full.str(), local.str(), size_);
  Pending p;
  if (size_ == 1) {
    local.copy_from(full.view(local.shape()));
    return p;
  }
  count(Collective::reduce_scatter, full.nbytes());
  p.state_ = std::make_unique<Pending::State>();
  if (full.is_cuda()) {
    p.state_->event = nccl::reduce_scatter_async(impl_->device_comm(), full, local, counts);
    return p;
  }
  p.state_->counts = mpi_counts(counts, nullptr, "reduce_scatter_async");
  MPI_CHECK(MPI_Ireduce_scatter(full.raw(), local.raw(), p.state_->counts.data(),
                                mpi_type(full.dtype()), MPI_SUM, impl_->comm, &p.state_->request));
  return p;
}

Pending Group::all_gather_async(Tensor& full, const std::vector<int64_t>& counts) const {
  SPECTRA_CHECK(int(counts.size()) == size_, "all_gather_async: {} counts over {} ranks",
                counts.size(), size_);
  Pending p;
  if (size_ == 1) return p;
  count(Collective::all_gather, size_t(counts[size_t(rank_)]) * dtype_size(full.dtype()));
  p.state_ = std::make_unique<Pending::State>();
  if (full.is_cuda()) {
    p.state_->event = nccl::all_gather_async(impl_->device_comm(), full, counts);
    return p;
  }
  Pending::State& s = *p.state_;
  s.counts = mpi_counts(counts, &s.displs, "all_gather_async");
  MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.raw(), s.counts.data(),
                            s.displs.data(), mpi_type(full.dtype()), impl_->comm, &s.request));
  return p;
}

bool Group::any(bool flag) const {
  if (size_ == 1) return flag;
  count(Collective::all_reduce, sizeof(int));
  int v = flag ? 1 : 0, out = 0;
  MPI_Request r;
  MPI_CHECK(MPI_Iallreduce(&v, &out, 1, MPI_INT, MPI_MAX, impl_->comm, &r));
  wait_host(r, "all_reduce");
  return out != 0;
}

}  // namespace spectra::dist
