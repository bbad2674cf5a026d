#include "train/optimizer.h"

#include <algorithm>

#include "autograd/var.h"
#include "kernels/ternary_packed.h"
#include "kernels/ternary_packed_cuda.h"

namespace spectra {

namespace {

dist::GradientLayout layout_of(const LM& model) {
  dist::GradientLayout l;
  l.elements = model.parameter_elements();
  l.segments = model.segment_offsets();
  int64_t off = 0;
  for (auto& [name, p] : model.named_parameters()) {
    dist::ArenaParam a;
    a.begin = off;
    a.end = off += shape_numel(p->shape);
    a.tp_split = p->split.parts > 1;
    a.cols = p->shape.size() == 2 ? p->shape[1] : 0;
    a.ternary = p->ternary;
    a.groups = p->scales.groups;
    a.axis = p->scales.axis;
    // Zero 3 sends a float parameter as the passes read it: its 16-bit compute copy, or f32.
    if (!p->ternary && p->compute.defined()) a.dtype = p->compute.dtype();
    l.params.push_back(a);
  }
  return l;
}

// ZeRO-3: the engine's replicated floats become the model's float parameters (an f32 one's
// master, or a 16-bit compute copy with no master beside it), and its projections' compute
// copies views into two slots the size of the largest bucket's projections (bucket i's in slot
// i % 2: dist::DataParallel::weight_slots).
void bind_sharded_weights(LM& model, const dist::DataParallel& e,
                          const dist::GradientLayout& layout) {
  const dist::ShardedWeights& w = *e.sharded_weights();
  const std::vector<dist::DataParallel::WeightSlot> slots = e.weight_slots();
  auto bucket_of = [&](int64_t x) {
    size_t i = 0;
    while (slots[i].end <= x) i++;
    return i;
  };
  std::vector<int64_t> size(slots.size(), 0), at(slots.size(), 0);
  for (const dist::ArenaParam& p : layout.params)
    if (p.ternary) size[bucket_of(p.begin)] += p.end - p.begin;
  const int64_t largest = *std::max_element(size.begin(), size.end());
  Tensor slot[2];
  for (Tensor& t : slot) t = Tensor::empty({largest}, model.compute_dtype(), model.device());
  size_t k = 0;
  model.shard_masters([&](int64_t begin, int64_t end) -> LM::MasterStorage {
    while (layout.params[k].begin < begin) k++;
    if (!layout.params[k].ternary) {
      const Tensor floats = w.floats(k);
      if (floats.dtype() == DType::f32) return {floats, Tensor()};
      return {Tensor(), floats};
    }
    const size_t i = bucket_of(begin);
    Tensor compute = slot[slots[i].slot].slice(at[i], at[i] + end - begin);
    at[i] += end - begin;
    return {Tensor(), compute};
  });
}

std::unique_ptr<dist::DataParallel> make_engine(LM& model, const dist::Group* dp,
                                                dist::DataParallelOptions o) {
  o.ternary_eps = model.config().ternary_eps;
  const dist::GradientLayout layout = layout_of(model);
  auto e = std::make_unique<dist::DataParallel>(dp, model.tp_group(), layout, model.master_arena(),
                                                model.grad_arena(), o);
  for (const auto& s : e->gradient_storage()) model.bind_gradients(s.begin, s.end, s.storage);
  if (e->sharded_weights()) bind_sharded_weights(model, *e, layout);
  return e;
}

// AdamW's pieces: each parameter's overlap with each part this rank owns, its reduced gradient
// and its moments at the same place in the shard.
std::vector<AdamWPiece> pieces_of(const LM& model, const dist::DataParallel& e) {
  std::vector<AdamWPiece> out;
  for (const auto& part : e.parts()) {
    int64_t off = 0;
    for (auto& [name, p] : model.named_parameters()) {
      const int64_t n = shape_numel(p->shape), a = std::max(off, part.begin),
                    b = std::min(off + n, part.end);
      if (a < b) {
        AdamWPiece piece;
        piece.state = part.local + a - part.begin;
        // The master arena at arena positions, or zero 3's latent shard at shard positions.
        piece.param = e.zero() == 3 ? e.latent().slice(piece.state, piece.state + b - a)
                                    : e.latent().slice(a, b);
        piece.grad = e.local_gradients().slice(piece.state, piece.state + b - a);
        piece.decay = p->decay;
        // A whole float parameter writes its compute copy in the update; parts of one are
        // refreshed once the all-gather has brought the rest, and TriLM projections are
        // quantized after the update (their scale is a mean over the whole matrix).
        if (e.zero() == 0 && p->compute.defined() && !p->ternary)
          piece.compute = p->compute.view({n});
        out.push_back(piece);
      }
      off += n;
    }
  }
  return out;
}

}  // namespace

dist::DataParallelOptions data_parallel_options(const Recipe& r) {
  dist::DataParallelOptions o;
  o.zero = r.parallel.zero;
  o.bucket_elements = dist::bucket_elements(r.parallel.bucket_mb);
  o.overlap = r.parallel.overlap;
  return o;
}

Optimizer::Optimizer(LM& model, const Recipe::Optimizer& cfg, bool fp16, const dist::Group* dp,
                     const dist::DataParallelOptions& options)
    : model_(model),
      engine_(make_engine(model, dp, options)),
      refresh_([this](int64_t a, int64_t b) { refresh(a, b); }),
      adamw_(pieces_of(model, *engine_), engine_->local_elements(), model.device(), cfg, fp16) {
  if (engine_->replicas() > 1) {
    model_.set_segment_hooks(this);
    ag::set_backward_progress([e = engine_.get()] { e->progress(); });
  }
  if (engine_->sharded_weights()) engine_->gather_weights(refresh_);  // the first codes
}

void Optimizer::refresh(int64_t begin, int64_t end) {
  // Zero 3: the gathered codes become the TriLM projections' compute copies.
  if (const dist::ShardedWeights* w = engine_->sharded_weights()) {
    size_t k = 0;
    int64_t off = 0;
    for (auto& [name, p] : model_.named_parameters()) {
      if (p->ternary && off >= begin && off < end) {
#ifdef SPECTRA_WITH_CUDA
        if (p->compute.is_cuda())
          kernels::unpack_ternary_quantized_cuda(w->packed(k), p->compute, p->gamma);
        else
#endif
          kernels::unpack_ternary_quantized(w->packed(k), p->compute, p->gamma);
      }
      off += shape_numel(p->shape);
      k++;
    }
  }
  model_.refresh_compute(begin, end);  // the rest: casts into 16-bit compute copies
}

Optimizer::~Optimizer() {
  model_.set_segment_hooks(nullptr);
  ag::set_backward_progress(nullptr);
}

void Optimizer::begin_micro_batch(bool last) { engine_->begin_micro_batch(last); }

StepStats Optimizer::step(double lr, double weight_decay) {
  const dist::ReducedGradients g = engine_->finish_gradients();
  StepStats s = adamw_.step(lr, weight_decay, g.sum_squares, g.nonfinite, g.replicas);
  if (!s.skipped && engine_->zero() == 0)
    model_.refresh_compute(0, model_.parameter_elements(), /*ternary_only=*/true);
  if (!s.skipped) engine_->gather_weights(refresh_);
  engine_->zero_gradients();
  engine_->begin_micro_batch(true);  // a step whose caller never says otherwise reduces once
  return s;
}

void Optimizer::sync_weights() { engine_->wait_weights(refresh_); }

Tensor Optimizer::full_moment(int which) const {
  return engine_->gather_state(adamw_.moment(which));
}

Tensor Optimizer::full_weights() const { return engine_->full_weights(); }

void Optimizer::restore(const Tensor& w_full, const Tensor& m_full, const Tensor& v_full,
                        int64_t steps, const LossScaler& s) {
  engine_->restore_weights(w_full);
  if (engine_->sharded_weights()) {
    engine_->gather_weights(refresh_);
    engine_->wait_weights(refresh_);
  } else {
    model_.refresh_compute();
  }
  model_.zero_grad();
  const Device d = model_.device();
  adamw_.restore(engine_->local_state(m_full, d), engine_->local_state(v_full, d), steps, s);
}

void Optimizer::before_forward(int segment) { engine_->before_forward(segment, refresh_); }
void Optimizer::backward_begins(int segment) { engine_->backward_begins(segment, refresh_); }
void Optimizer::gradients_ready(int segment) { engine_->gradients_ready(segment); }

}  // namespace spectra
