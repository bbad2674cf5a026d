#include "dist/data_parallel.h"

#include <algorithm>

#include "core/progress.h"
#include "kernels/elementwise.h"

namespace spectra::dist {

int zero_stage(int zero, int dp) { return dp > 1 ? zero : 0; }

int64_t accumulation_steps(int64_t global_batch, int64_t micro_batch, int dp) {
  const int64_t per_pass = micro_batch * dp;
  return per_pass > 0 && global_batch % per_pass == 0 ? global_batch / per_pass : 0;
}

int64_t bucket_elements(double mb) { return std::max<int64_t>(1, int64_t(mb * 262144.0)); }

namespace {
int64_t part_of(int64_t size, int dp, int rank) { return size / dp + (rank < size % dp ? 1 : 0); }
}  // namespace

BucketPlan plan_buckets(const std::vector<int64_t>& seg, int64_t n, int dp, int zero,
                        int64_t bucket_elements, int rank) {
  BucketPlan p;
  // Buckets from the end: whole segments until a bucket reaches bucket_elements.
  int64_t end = n;
  int last = int(seg.size()) - 1;
  for (int s = last; s >= 0; s--) {
    if (end - seg[size_t(s)] < bucket_elements && s > 0) continue;
    p.buckets.push_back({seg[size_t(s)], end, s, last});
    end = seg[size_t(s)];
    last = s - 1;
  }
  std::reverse(p.buckets.begin(), p.buckets.end());
  for (const BucketPlan::Span& b : p.buckets) {
    p.largest = std::max(p.largest, b.end - b.begin);
    p.shard_elements += zero ? part_of(b.end - b.begin, dp, rank) : b.end - b.begin;
  }
  p.gradient_elements = zero == 0   ? n
                        : zero == 1 ? n + p.shard_elements
                                    : 2 * p.shard_elements + 2 * p.largest;
  return p;
}

struct DataParallel::Bucket {
  int64_t begin = 0, end = 0;
  int first_segment = 0, last_segment = 0;
  std::vector<int64_t> counts;  // each rank's part, in rank order
  int64_t part_begin = 0;       // this rank's part: [part_begin, part_begin + counts[rank])
  int64_t local = 0;            // where it lies in the shard
  int slot = -1;                // ZeRO-2/3: its ring slot
  Tensor grads;                 // its full gradients: arena slice or ring slot
  Pending reduce, gather;
  bool launched = false, reduce_pending = false, gather_pending = false;
  int64_t size() const { return end - begin; }
};

DataParallel::DataParallel(const Group* dp, const Group* tp, GradientLayout layout, Tensor master,
                           Tensor grads, const DataParallelOptions& opt)
    : dp_(dp && dp->size() > 1 ? dp : nullptr),
      tp_(tp && tp->size() > 1 ? tp : nullptr),
      layout_(std::move(layout)),
      opt_(opt),
      zero_(zero_stage(opt.zero, dp_ ? dp_->size() : 1)),
      master_(std::move(master)),
      grads_(std::move(grads)) {
  SPECTRA_CHECK(opt.zero >= 0 && opt.zero <= 3, "ZeRO stage {} (0 to 3)", opt.zero);
  const int64_t n = layout_.elements;
  const int d = replicas(), rank = dp_ ? dp_->rank() : 0;
  const BucketPlan plan = plan_buckets(layout_.segments, n, d, zero_, opt.bucket_elements, rank);
  for (const BucketPlan::Span& span : plan.buckets) {
    Bucket b;
    b.begin = span.begin;
    b.end = span.end;
    b.first_segment = span.first_segment;
    b.last_segment = span.last_segment;
    buckets_.push_back(std::move(b));
  }
  // Each bucket in d near-equal parts; this rank's parts, in bucket order, form its shard.
  for (size_t i = 0; i < buckets_.size(); i++) {
    Bucket& b = buckets_[i];
    int64_t off = b.begin;
    // Zero 3 packs whole rows: its parts end at row boundaries.
    b.counts = zero_ == 3 ? split_rows(b.begin, b.end, d, layout_.params)
                          : std::vector<int64_t>(size_t(d));
    for (int r = 0; r < d; r++) {
      if (zero_ < 3) b.counts[size_t(r)] = part_of(b.size(), d, r);
      if (r < rank) off += b.counts[size_t(r)];
    }
    b.part_begin = off;
    b.local = local_elements_;
    local_elements_ += zero_ ? b.counts[size_t(rank)] : b.size();
    if (zero_ >= 2) b.slot = int(buckets_.size() - 1 - i) % 2;
  }
  SPECTRA_CHECK(zero_ == 3 || local_elements_ == plan.shard_elements,
                "DataParallel: shard disagrees with plan");
  const int64_t largest = plan.largest;
  const Device dev = master_.device();
  if (zero_ == 0) {
    parts_.push_back({0, n, 0});
    local_grads_ = grads_;
  } else {
    for (const Bucket& b : buckets_)
      parts_.push_back({b.part_begin, b.part_begin + b.counts[size_t(rank)], b.local});
    local_grads_ = Tensor::zeros({local_elements_}, DType::f32, dev);
  }
  if (zero_ >= 2) {
    incoming_ = Tensor::zeros({local_elements_}, DType::f32, dev);
    for (int k = 0; k < 2; k++) ring_.push_back(Tensor::zeros({largest}, DType::f32, dev));
    ring_owner_.assign(2, -1);
  }
  for (Bucket& b : buckets_)
    b.grads = zero_ >= 2 ? ring_[size_t(b.slot)].slice(0, b.size()) : grads_.slice(b.begin, b.end);
  if (zero_ >= 2) grads_ = Tensor();  // the model frees its arena once it binds the ring
  // The gradient norm adds each parameter's squares once over dp x tp: split tensors' blocks are
  // summed over tp, a replicated tensor (the same gradient on every TP rank) is taken once.
  for (const Part& part : parts_)
    for (const ArenaParam& p : layout_.params) {
      const int64_t a = std::max(part.begin, p.begin), e = std::min(part.end, p.end);
      if (a >= e) continue;
      Tensor g = local_grads_.slice(part.local + a - part.begin, part.local + e - part.begin);
      (p.tp_split || !tp_ ? split_grads_ : replicated_grads_).push_back(g);
    }
  if (zero_ == 3) {  // the weights move into this rank's shard and the replicated buffers
    latent_ = local_state(master_, dev);
    std::vector<ShardedWeights::Bucket> spans;
    for (const Bucket& b : buckets_) spans.push_back({b.begin, b.end, b.counts});
    weights_ = std::make_unique<ShardedWeights>(layout_.params, std::move(spans), rank,
                                                opt.ternary_eps, master_);
    master_ = Tensor();  // the model frees its arena once it binds the replicated weights
    resident_.assign(2, -1);
  }
}

std::vector<DataParallel::WeightSlot> DataParallel::weight_slots() const {
  std::vector<WeightSlot> out;
  if (zero_ == 3)
    for (size_t i = 0; i < buckets_.size(); i++)
      out.push_back({buckets_[i].begin, buckets_[i].end, int(i % 2)});
  return out;
}

DataParallel::~DataParallel() = default;

std::vector<DataParallel::Storage> DataParallel::gradient_storage() const {
  std::vector<Storage> out;
  if (zero_ >= 2)
    for (const Bucket& b : buckets_) out.push_back({b.begin, b.end, b.grads});
  return out;
}

void DataParallel::begin_micro_batch(bool last) {
  communicate_ = zero_ >= 2 || last;
  for (Bucket& b : buckets_) b.launched = false;
}

void DataParallel::launch_reduce(Bucket& b) {
  Stopwatch clock;
  if (zero_ == 0) {
    b.reduce = dp_->all_reduce_async(b.grads);
  } else {
    Tensor& into = zero_ >= 2 ? incoming_ : local_grads_;
    Tensor part = into.slice(b.local, b.local + b.counts[size_t(dp_->rank())]);
    b.reduce = dp_->reduce_scatter_async(b.grads, part, b.counts);
  }
  b.launched = b.reduce_pending = true;
  comm_.bytes += double(b.size()) * 4;
  comm_.exposed_s += clock.seconds();
  if (!opt_.overlap) complete_reduce(b);
}

void DataParallel::complete_reduce(Bucket& b) {
  if (!b.reduce_pending) return;
  Stopwatch clock;
  b.reduce.wait();
  b.reduce_pending = false;
  if (zero_ >= 2) {  // this micro-batch's reduced part joins the accumulated ones
    const int64_t n = b.counts[size_t(dp_->rank())];
    Tensor acc = local_grads_.slice(b.local, b.local + n);
    kernels::axpy(1.f, incoming_.slice(b.local, b.local + n), acc);
  }
  comm_.exposed_s += clock.seconds();
}

void DataParallel::complete_gather(Bucket& b,
                                   const std::function<void(int64_t, int64_t)>& refresh) {
  if (!b.gather_pending) return;
  b.gather.wait();
  b.gather_pending = false;
  if (zero_ == 3) {  // new codes: unpacked where the bucket is next used (make_resident)
    for (int& owner : resident_)
      if (owner == int(&b - buckets_.data())) owner = -1;
    return;
  }
  if (refresh) refresh(b.begin, b.end);
}

void DataParallel::make_resident(size_t i, const std::function<void(int64_t, int64_t)>& refresh) {
  Bucket& b = buckets_[i];
  complete_gather(b, refresh);
  int& owner = resident_[i % 2];
  if (owner == int(i)) return;
  if (refresh) refresh(b.begin, b.end);
  owner = int(i);
}

void DataParallel::before_forward(int segment,
                                  const std::function<void(int64_t, int64_t)>& refresh) {
  for (size_t i = 0; i < buckets_.size(); i++) {
    Bucket& b = buckets_[i];
    if (segment >= b.first_segment && segment <= b.last_segment) {
      if (zero_ == 3)
        make_resident(i, refresh);
      else
        complete_gather(b, refresh);
    }
    if (b.gather_pending) b.gather.test();  // lets MPI progress the later buckets' gathers
  }
}

void DataParallel::backward_begins(int segment,
                                   const std::function<void(int64_t, int64_t)>& refresh) {
  if (zero_ < 2) return;
  for (size_t i = 0; i < buckets_.size(); i++) {
    Bucket& b = buckets_[i];
    // Zero 3: the backward pass reads the weights again; the slot may hold another bucket's.
    if (zero_ == 3 && segment >= b.first_segment && segment <= b.last_segment)
      make_resident(i, refresh);
    if (b.last_segment != segment) continue;
    // The slot's previous bucket must be reduced before this one's gradients overwrite it.
    int& owner = ring_owner_[size_t(b.slot)];
    if (owner >= 0) complete_reduce(buckets_[size_t(owner)]);
    b.grads.zero_();
    owner = int(i);
  }
}

void DataParallel::gradients_ready(int segment) {
  if (!dp_ || !communicate_) return;
  for (Bucket& b : buckets_) {
    if (b.first_segment == segment && !b.launched) launch_reduce(b);
    if (b.reduce_pending) b.reduce.test();  // progress for non-blocking MPI
  }
}

void DataParallel::progress() {
  for (Bucket& b : buckets_) {
    if (b.reduce_pending) b.reduce.test();
    if (b.gather_pending) b.gather.test();
  }
}

ReducedGradients DataParallel::finish_gradients() {
  ReducedGradients g;
  g.replicas = replicas();
  if (dp_) {
    for (Bucket& b : buckets_) {  // whatever no hook launched (a forward without segment hooks)
      SPECTRA_CHECK(zero_ < 2 || !communicate_ || b.launched,
                    "ZeRO-2: bucket [{}, {}) was not reduced during the backward pass (the "
                    "model's segment hooks are not connected)",
                    b.begin, b.end);
      if (communicate_ && !b.launched) launch_reduce(b);
    }
    for (Bucket& b : buckets_) complete_reduce(b);
  }
  bool bad_split = false, bad_replicated = false;
  Tensor t = Tensor::zeros({2}, DType::f64);
  if (!split_grads_.empty()) t.data<double>()[0] = kernels::sum_squares(split_grads_, &bad_split);
  if (!replicated_grads_.empty())
    t.data<double>()[1] = kernels::sum_squares(replicated_grads_, &bad_replicated);
  g.nonfinite = bad_split || bad_replicated;
  if (zero_) {  // each rank holds different parts: sum the squares, agree on overflow
    dp_->all_reduce(t);
    g.nonfinite = dp_->any(g.nonfinite);
  }
  if (tp_) {
    Tensor split = t.slice(0, 1);
    tp_->all_reduce(split);
    g.nonfinite = tp_->any(g.nonfinite);
  }
  g.sum_squares = t.data<double>()[0] + t.data<double>()[1];
  return g;
}

void DataParallel::gather_weights(const std::function<void(int64_t, int64_t)>& refresh) {
  if (!zero_) return;
  if (weights_) {  // zero 3: γ from every rank's sums, then this rank's codes and floats
    Tensor all = Tensor::empty({weights_->scale_blocks() * replicas()}, DType::f64);
    if (weights_->scale_blocks() > 0) dp_->all_gather(weights_->abs_sums(latent_), all);
    weights_->set_gammas(all);
    weights_->encode(latent_);
  }
  for (size_t i = 0; i < buckets_.size(); i++) {
    Bucket& b = buckets_[i];
    // Zero 3: the bucket's replicated bytes (codes and floats); else its f32 masters.
    Tensor full = weights_ ? weights_->bucket_bytes(i) : master_.slice(b.begin, b.end);
    b.gather = dp_->all_gather_async(full, weights_ ? weights_->byte_counts(i) : b.counts);
    b.gather_pending = true;
    if (!opt_.overlap) complete_gather(b, refresh);
  }
}

void DataParallel::wait_weights(const std::function<void(int64_t, int64_t)>& refresh) {
  for (Bucket& b : buckets_) complete_gather(b, refresh);
}

void DataParallel::zero_gradients() {
  if (grads_.defined() && zero_ < 2) grads_.zero_();
  if (zero_) local_grads_.zero_();
}

Tensor DataParallel::gather_state(const Tensor& local) const {
  if (!zero_) return local;
  const int d = replicas();
  // Each rank's shard length, and the largest: shards are padded to it for one MPI_Gather.
  std::vector<int64_t> shard(size_t(d), 0);
  for (const Bucket& b : buckets_)
    for (int r = 0; r < d; r++) shard[size_t(r)] += b.counts[size_t(r)];
  const int64_t width = *std::max_element(shard.begin(), shard.end());
  Tensor mine = Tensor::zeros({width});
  mine.slice(0, local_elements_).copy_from(local.to(Device::cpu()));
  Tensor all;
  if (dp_->rank() == 0) all = Tensor::empty({width * d});
  dp_->gather(mine, all, 0);
  if (dp_->rank() != 0) return Tensor();
  Tensor full = Tensor::empty({layout_.elements});
  std::vector<int64_t> local_off(size_t(d), 0);  // where each rank's next part starts
  for (const Bucket& b : buckets_) {
    int64_t at = b.begin;
    for (int r = 0; r < d; r++) {
      const int64_t c = b.counts[size_t(r)], src = r * width + local_off[size_t(r)];
      full.slice(at, at + c).copy_from(all.slice(src, src + c));
      at += c;
      local_off[size_t(r)] += c;
    }
  }
  return full;
}

Tensor DataParallel::local_state(const Tensor& full, Device device) const {
  SPECTRA_CHECK(full.numel() == layout_.elements, "local_state: {} for an arena of {}", full.str(),
                layout_.elements);
  Tensor out = Tensor::empty({local_elements_});
  for (const Part& p : parts_)
    out.slice(p.local, p.local + p.end - p.begin).copy_from(full.slice(p.begin, p.end));
  return out.to(device);
}

Tensor DataParallel::full_weights() const { return zero_ == 3 ? gather_state(latent_) : master_; }

void DataParallel::restore_weights(const Tensor& full) {
  if (zero_ == 3)
    latent_.copy_from(local_state(full, latent_.device()));
  else
    master_.copy_from(full.to(master_.device()));
}

DataParallel::CommTime DataParallel::take_comm_time() {
  CommTime t = comm_;
  comm_ = {};
  return t;
}

}  // namespace spectra::dist
