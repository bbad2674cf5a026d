#include "train/optimizer.h"

#include "autograd/var.h"

namespace spectra {

namespace {

dist::GradientLayout layout_of(const LM& model) {
  dist::GradientLayout l;
  l.elements = model.parameter_elements();
  l.segments = model.segment_offsets();
  int64_t off = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const int64_t n = p->master.numel();
    l.params.push_back({off, off + n, p->split.parts > 1});
    off += n;
  }
  return l;
}

std::unique_ptr<dist::DataParallel> make_engine(LM& model, const dist::Group* dp,
                                                const dist::DataParallelOptions& o) {
  auto e = std::make_unique<dist::DataParallel>(dp, model.tp_group(), layout_of(model),
                                                model.master_arena(), model.grad_arena(), o);
  for (const auto& s : e->gradient_storage()) model.bind_gradients(s.begin, s.end, s.storage);
  return e;
}

// AdamW's pieces: each parameter's overlap with each part this rank owns, its reduced gradient
// and its moments at the same place in the shard.
std::vector<AdamWPiece> pieces_of(const LM& model, const dist::DataParallel& e) {
  std::vector<AdamWPiece> out;
  const Tensor& master = model.master_arena();
  for (const auto& part : e.parts()) {
    int64_t off = 0;
    for (auto& [name, p] : model.named_parameters()) {
      const int64_t n = p->master.numel(), a = std::max(off, part.begin),
                    b = std::min(off + n, part.end);
      if (a < b) {
        AdamWPiece piece;
        piece.param = master.slice(a, b);
        piece.state = part.local + a - part.begin;
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
      refresh_([this](int64_t a, int64_t b) { model_.refresh_compute(a, b); }),
      adamw_(pieces_of(model, *engine_), engine_->local_elements(), model.device(), cfg, fp16) {
  if (engine_->replicas() > 1) {
    model_.set_segment_hooks(this);
    ag::set_backward_progress([e = engine_.get()] { e->progress(); });
  }
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

void Optimizer::restore(const Tensor& m_full, const Tensor& v_full, int64_t steps,
                        const LossScaler& s) {
  const Device d = model_.device();
  adamw_.restore(engine_->local_state(m_full, d), engine_->local_state(v_full, d), steps, s);
}

void Optimizer::before_forward(int segment) { engine_->before_forward(segment, refresh_); }
void Optimizer::backward_begins(int segment) { engine_->backward_begins(segment); }
void Optimizer::gradients_ready(int segment) { engine_->gradients_ready(segment); }

}  // namespace spectra
