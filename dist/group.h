// Process groups and collectives. A Group is a set of ranks (an MPI communicator) that run
// collectives together; tensors in host memory go through MPI, tensors in device memory through
// NCCL (dist/nccl.h), behind this one interface. The model never calls MPI or NCCL directly.
//
//   Group world = Group::world();
//   Group tp = world.split(world.rank() / tp_size, world.rank());  // consecutive ranks
//   tp.all_reduce(partial);                    // in place, sum
//   tp.all_gather(shard, full);                // full = concat of every rank's shard, dim 0
//
// The *_async forms start a collective and return at once; the data-parallel engine overlaps
// them with the backward pass. Host tensors use non-blocking MPI, device tensors NCCL on a
// separate communication stream ordered after the work already queued on spectra's stream.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace spectra::dist {

enum class ReduceOp : uint8_t { sum = 0, max = 1 };

// What this process has put into collectives since it started (or reset_traffic()), per kind:
// the calls and their payload, the bytes of this rank's contribution (all_reduce: the tensor;
// all_gather: its own part; reduce_scatter: the whole input; broadcast: the tensor, counted on
// the root; gather: its part). A collective over one rank moves nothing and counts nothing. The
// bytes a ring puts on the wire are (size - 1)/size of the same payloads, so ratios between
// layouts read the same either way. Host (MPI) and device (NCCL) collectives alike.
enum class Collective : uint8_t { all_reduce = 0, all_gather, reduce_scatter, broadcast, gather };
constexpr int kCollectives = 5;
const char* collective_name(Collective c);
struct Traffic {
  uint64_t bytes[kCollectives] = {}, calls[kCollectives] = {};
  uint64_t of(Collective c) const { return bytes[int(c)]; }
  Traffic operator-(const Traffic& before) const;
};
Traffic traffic();
void reset_traffic();

// A collective in flight. wait() completes it: host (MPI) blocks until the buffers are final;
// device (NCCL) makes spectra's stream wait for the communication stream, without blocking the
// host. test() lets MPI progress without blocking and says whether it is done. A Pending that
// is destroyed unfinished is waited for: buffers are never left in use by a forgotten request.
class Pending {
 public:
  Pending();
  Pending(Pending&&) noexcept;
  Pending& operator=(Pending&&) noexcept;
  ~Pending();
  bool test();
  void wait();
  bool active() const { return state_ != nullptr; }

  struct State;  // an MPI request or an NCCL completion event

 private:
  friend class Group;
  std::unique_ptr<State> state_;
};

class Group {
 public:
  // Every rank of the job (a world of one without a launcher).
  static Group world();
  // Ranks with the same color form a group, ordered by key (MPI_Comm_split).
  Group split(int color, int key) const;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // In place over all ranks of the group. f32, f64, i32, i64 (NCCL also bf16/f16).
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) const;
  // out [size·n, ...] = concatenation of every rank's local [n, ...] along dim 0. `local` may be
  // this rank's own slot of `out` (in place).
  void all_gather(const Tensor& local, Tensor& out) const;
  // `out` [size·n, ...] on `root` only = every rank's `local` [n, ...] in rank order. Host
  // memory (MPI): a device `local` is staged through the host. `out` is ignored off the root.
  void gather(const Tensor& local, Tensor& out, int root) const;
  // Sums `full` [size·n, ...] over ranks; this rank keeps rows [rank·n, (rank+1)·n) in local.
  void reduce_scatter(const Tensor& full, Tensor& local) const;
  void broadcast(Tensor& t, int root) const;

  // Uneven forms for the data-parallel engine: rank i's part is counts[i] elements, the parts
  // lie one after another in `full` in rank order (so no shard needs padding).
  //   all_reduce_async:      t summed over the group, in place.
  //   reduce_scatter_async:  local [counts[rank]] = this rank's part of the sum of every `full`.
  //   all_gather_async:      every rank's part of `full` (in place) reaches every rank.
  // The buffers must stay alive and untouched until the Pending completes.
  Pending all_reduce_async(Tensor& t) const;
  Pending reduce_scatter_async(const Tensor& full, Tensor& local,
                               const std::vector<int64_t>& counts) const;
  Pending all_gather_async(Tensor& full, const std::vector<int64_t>& counts) const;
  // Returns root's `s` on every rank (host, MPI).
  std::string broadcast(const std::string& s, int root) const;
  void barrier() const;
  // True on every rank if `flag` is true on any: ranks agree before acting on a local failure.
  bool any(bool flag) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
};

}  // namespace spectra::dist
