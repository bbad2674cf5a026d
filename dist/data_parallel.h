// The data-parallel engine: how the D replicas of a model (one per rank of the data-parallel
// group) agree on one update each step. It owns everything about that agreement: the buckets,
// the shards and their layout, the reduce of gradients, the all-gather of updated weights and
// the gradient norm over dp x tp. It sees the model only as flat arenas cut into segments.
//
//   zero 0: each bucket's gradients are all-reduced in place; every rank updates everything.
//   zero 1: the gradients accumulate in the full arena over the micro-batches, each bucket is
//           reduce-scattered on the last one, and a rank keeps only its part of the reduced
//           gradients and of the AdamW state; the updated weights are all-gathered.
//   zero 2: as 1, but no full gradient arena exists: the backward pass writes each bucket into a
//           slot of a two-slot ring, which is reduce-scattered (every micro-batch) and reused,
//           and the reduced parts accumulate in this rank's shard.
//   zero 3: as 2, and no rank keeps the whole latent model either: each keeps its shard of the
//           weights (parts cut at row boundaries), updates it, and the ranks all-gather what
//           the passes read, one run of bytes per bucket (dist/sharded_weights.h): a TriLM
//           projection as 2-bit codes, unpacked into compute copies two buckets at a time
//           (weight_slots), a float parameter in the dtype the passes read it in. Verified on
//           the CPU; the GPU path (NCCL) has not run yet.
//
// A bucket is a run of whole segments of at least `bucket_elements`, built from the end of the
// arena, so the first bucket the backward pass completes (the LM head's) is launched at once.
// Each bucket is split over the ranks in D near-equal parts (rank i's part follows rank i-1's):
// no padding, and this rank's shard is its parts of every bucket, in bucket order.
//
// The step, as the trainer's optimizer drives it:
//   begin_micro_batch(last)                           before each micro-batch's forward
//   before_forward / backward_begins / gradients_ready  from the model's segment hooks
//   ReducedGradients g = finish_gradients()           after the last micro-batch
//   ... the update rule writes this rank's parts of the master weights ...
//   gather_weights(refresh)                           zero 1-3: starts the all-gather
//   zero_gradients()
// With overlap, reduces start as the backward pass completes each bucket (non-blocking MPI on
// the host, NCCL on a communication stream on the GPU) and the all-gather of a bucket is waited
// for only when the next forward reaches it. Without, every collective blocks where it starts.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "dist/group.h"
#include "dist/sharded_weights.h"

namespace spectra::dist {

// Gradients per collective, at least (parallel.bucket_mb's default), and that size in f32
// elements.
constexpr double kDefaultBucketMb = 25;
int64_t bucket_elements(double mb);

struct DataParallelOptions {
  int zero = 0;           // 0 to 3; taken as 0 when dp is 1 (zero_stage)
  float ternary_eps = 0;  // zero 3: the TriLM quantizer's eps (γ is computed here)
  int64_t bucket_elements = dist::bucket_elements(kDefaultBucketMb);
  bool overlap = true;
};

// The layout rules, stated once. The ZeRO stage that applies: sharding over one replica is none.
int zero_stage(int zero, int dp);
// Micro-batches each rank runs per step: global_batch = micro_batch x dp x accumulation.
// Returns 0 when the global batch does not split that way.
int64_t accumulation_steps(int64_t global_batch, int64_t micro_batch, int dp);

// The buckets and what the engine holds for them, from the arena's segments alone (no model, no
// group): the engine builds its buckets from it, and the training plan (--dry-run) reports it.
// zero is the stage that applies (zero_stage); the figures are rank `rank`'s (rank 0 holds the
// largest parts).
struct BucketPlan {
  struct Span {
    int64_t begin, end;
    int first_segment, last_segment;
  };
  std::vector<Span> buckets;  // in arena order
  int64_t largest = 0;        // elements of the largest bucket
  // f32 elements this rank holds: the AdamW state's (its shard under ZeRO, else everything) and
  // the gradients' (the model's arena; under ZeRO-1 also the reduced shard; under ZeRO-2 no arena
  // but the shard, its incoming part and two ring slots of the largest bucket).
  int64_t shard_elements = 0, gradient_elements = 0;
};
BucketPlan plan_buckets(const std::vector<int64_t>& segments, int64_t elements, int dp, int zero,
                        int64_t bucket_elements, int rank = 0);

struct GradientLayout {
  int64_t elements = 0;            // the arenas' length
  std::vector<int64_t> segments;   // where each segment begins, in order (see SegmentHooks)
  std::vector<ArenaParam> params;  // in arena order, covering it
};

// The gradients as the update rule needs them: summed over dp (divide by `replicas` for the
// mean), with their global sum of squares over dp x tp and whether any was inf/NaN anywhere.
struct ReducedGradients {
  double sum_squares = 0;
  bool nonfinite = false;
  int replicas = 1;
};

class DataParallel {
 public:
  // dp, tp: the groups (null or of size 1: none); they must outlive the engine. master, grads:
  // the model's arenas (under ZeRO-2 the model's gradients move into gradient_storage() and
  // `grads` is not used).
  DataParallel(const Group* dp, const Group* tp, GradientLayout layout, Tensor master, Tensor grads,
               const DataParallelOptions& opt);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int zero() const { return zero_; }
  // Between steps: overlap or block (the benchmark alternates them step by step).
  void set_overlap(bool on) { opt_.overlap = on; }
  int replicas() const { return dp_ ? dp_->size() : 1; }

  // ZeRO-2: where each bucket's gradients live, as (begin, end, storage) for the model to bind.
  struct Storage {
    int64_t begin, end;
    Tensor storage;
  };
  std::vector<Storage> gradient_storage() const;

  // ---- the step ----
  void begin_micro_batch(bool last);
  // Hooks: `refresh(begin, end)` runs after a gathered range arrives (the model casts its
  // masters into its 16-bit compute copies there).
  void before_forward(int segment, const std::function<void(int64_t, int64_t)>& refresh);
  void backward_begins(int segment, const std::function<void(int64_t, int64_t)>& refresh);
  void gradients_ready(int segment);
  // Lets pending non-blocking collectives progress (MPI moves data only inside MPI calls).
  void progress();
  ReducedGradients finish_gradients();
  void gather_weights(const std::function<void(int64_t, int64_t)>& refresh);
  // Completes every pending all-gather: before the masters are read outside a forward pass.
  void wait_weights(const std::function<void(int64_t, int64_t)>& refresh);
  void zero_gradients();

  // ---- what this rank updates ----
  // This rank's parts, in shard order: arena range [begin, end) at `local` in the shard.
  struct Part {
    int64_t begin, end, local;
  };
  const std::vector<Part>& parts() const { return parts_; }
  int64_t local_elements() const { return local_elements_; }
  // The reduced gradients of this rank's shard ([local_elements], shard order).
  const Tensor& local_gradients() const { return local_grads_; }

  // Checkpoints hold whole-arena state. gather_state: every rank's shard-ordered `local` into
  // arena order, on host, at dp rank 0 (undefined elsewhere; collective over dp). local_state:
  // this rank's shard of a whole-arena host tensor, on `device`.
  Tensor gather_state(const Tensor& local) const;
  Tensor local_state(const Tensor& full, Device device) const;

  // ---- the weights ----
  // What the update rule writes: the model's master arena (zero 0-2, at arena positions), or
  // under zero 3 this rank's shard of the latent weights ([local_elements], shard order).
  const Tensor& latent() const { return zero_ == 3 ? latent_ : master_; }
  // Zero 3: the replicated weights the model reads (null below zero 3).
  const ShardedWeights* sharded_weights() const { return weights_.get(); }
  // Zero 3: the TriLM projections' compute copies (the trits the passes read) exist for two
  // buckets at a time, in two slots: bucket i's in slot i % 2, unpacked from its codes by
  // `refresh` when a forward or backward segment of it begins and the slot holds another's.
  // Each bucket's arena range and slot (empty below zero 3).
  struct WeightSlot {
    int64_t begin, end;
    int slot;
  };
  std::vector<WeightSlot> weight_slots() const;
  // The whole latent arena: the model's (zero 0-2) or, under zero 3, every rank's shard
  // assembled on dp rank 0 (gather_state: collective, undefined elsewhere).
  Tensor full_weights() const;
  // Sets the latent weights from a whole-arena host tensor (a checkpoint's); then zero 3 needs
  // gather_weights and zero 0-2 the model's refresh_compute.
  void restore_weights(const Tensor& full);

  // Seconds the step spent blocked on gradient communication since the last call (what the
  // backward pass did not hide), and the bytes reduced.
  struct CommTime {
    double exposed_s = 0;
    double bytes = 0;
  };
  CommTime take_comm_time();

 private:
  struct Bucket;
  void launch_reduce(Bucket& b);
  void complete_reduce(Bucket& b);
  void complete_gather(Bucket& b, const std::function<void(int64_t, int64_t)>& refresh);
  void make_resident(size_t i, const std::function<void(int64_t, int64_t)>& refresh);

  const Group* dp_ = nullptr;  // null: one replica
  const Group* tp_ = nullptr;  // null: no tensor parallelism
  GradientLayout layout_;
  DataParallelOptions opt_;
  int zero_ = 0;
  Tensor master_, grads_, local_grads_, incoming_;
  Tensor latent_;                            // zero 3: this rank's shard of the weights
  std::unique_ptr<ShardedWeights> weights_;  // zero 3: what every rank reads
  std::vector<int> resident_;                // zero 3: the bucket each weight slot holds (-1)
  std::vector<Tensor> ring_;
  std::vector<int> ring_owner_;  // the bucket whose gradients each ring slot holds (-1: none)
  std::vector<Tensor> split_grads_, replicated_grads_;  // local_grads_ by TP kind
  std::vector<Bucket> buckets_;
  std::vector<Part> parts_;
  int64_t local_elements_ = 0;
  bool communicate_ = true;
  CommTime comm_;
};

}  // namespace spectra::dist
