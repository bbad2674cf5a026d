#include "layers/lm.h"

#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "autograd/recompute.h"
#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/ternary.h"

namespace spectra {

LM::LM(const ModelConfig& cfg, const LayerOptions& opt, DType compute_dtype)
    : cfg_(cfg),
      opt_(opt),
      compute_dtype_(compute_dtype),
      embed_(cfg.vocab_rows, cfg.hidden, opt),
      norm_(cfg.hidden, cfg.norm_eps, opt),
      head_(cfg.hidden, cfg.vocab_rows, /*ternary=*/false, 0.f, TpSplit::column, opt) {
  for (int64_t i = 0; i < cfg.layers; i++) {
    layers_.emplace_back(cfg, opt);
    layers_container_.add_child(std::to_string(i), &layers_.back());
  }
  model_.add_child("embed_tokens", &embed_);
  model_.add_child("layers", &layers_container_);
  model_.add_child("norm", &norm_);
  add_child("model", &model_);
  add_child("lm_head", &head_);

  // One allocation for all masters and one for all gradients; parameters are views.
  auto params = named_parameters();
  for (auto& [name, p] : params) elements_ += shape_numel(p->shape);
  master_arena_ = Tensor::zeros({elements_}, opt.param_dtype, opt.device);
  grad_arena_ = Tensor::zeros({elements_}, opt.param_dtype, opt.device);
  // Segments: the embedding, each block, the final norm and head (registration order).
  auto count = [](const Module& m) {
    int64_t n = 0;
    for (auto& [name, p] : m.named_parameters()) n += shape_numel(p->shape);
    return n;
  };
  segment_offsets_ = {0, count(embed_)};
  for (const Block& b : layers_) segment_offsets_.push_back(segment_offsets_.back() + count(b));
  const ArenaLayout expected = arena_layout(cfg, opt.tp_size());
  SPECTRA_CHECK(expected.segment_offsets == segment_offsets_ && expected.elements == elements_,
                "LM::arena_layout disagrees with the parameters the model registered");
  int64_t off = 0;
  for (auto& [name, p] : params) {
    int64_t n = shape_numel(p->shape);
    p->master = master_arena_.slice(off, off + n).view(p->shape);
    p->grad = grad_arena_.slice(off, off + n).view(p->shape);
    off += n;
  }

  // 16-bit compute: every weight gets a compute copy (a TriLM projection's holds its
  // quantization, with its scales); norm gains are read in f32 by RMSNorm and need none.
  if (compute_dtype != opt.param_dtype)
    for (auto& [name, p] : named_parameters()) {
      if (p->init == Init::ones) continue;
      p->compute = Tensor::empty(p->master.shape(), compute_dtype, opt.device);
      if (p->ternary) p->gamma = Tensor::empty({p->scales.groups}, DType::f32, opt.device);
    }
}

LM::ArenaLayout LM::arena_layout(const ModelConfig& c, int tp) {
  const int64_t d = c.hidden, rows = c.vocab_rows / tp;
  // A block: the two norm gains, q, k, v and o (d x d, split over tp), gate, up and down
  // (ffn x d, split over tp).
  const int64_t block = 2 * d + 4 * (d / tp) * d + 3 * (c.ffn / tp) * d;
  ArenaLayout a;
  a.segment_offsets = {0, rows * d};  // the embedding, then each block
  for (int64_t l = 0; l < c.layers; l++)
    a.segment_offsets.push_back(a.segment_offsets.back() + block);
  a.elements = a.segment_offsets.back() + d + rows * d;  // the final norm and the LM head
  return a;
}

void LM::initialize(uint64_t seed) {
  for (auto& [name, p] : named_parameters()) {
    // Element i of this rank's block draws the number of its place in the full tensor, so
    // every layout starts from the same model.
    Tensor host = Tensor::empty(p->master.shape(), DType::f64);
    double* h = host.data<double>();
    uint64_t key = hash_name(name, seed);
    for (int64_t i = 0; i < host.numel(); i++)
      h[i] = p->init == Init::ones
                 ? 1.0
                 : double(cfg_.init_std) *
                       double(philox_normal(key, uint64_t(p->split.full_index(p->full, i))));
    p->master.copy_from(host.to(p->master.dtype()).to(p->master.device()));
  }
  refresh_compute();
  zero_grad();
}

void LM::refresh_compute() { refresh_compute(0, elements_); }

void LM::refresh_compute(int64_t begin, int64_t end, bool ternary_only) {
  SPECTRA_CHECK(!packed_, "LM: the TriLM weights are packed for inference (no latent weights)");
  int64_t off = 0;
  for (auto& [name, p] : named_parameters()) {
    const bool in_range = off >= begin && off < end && (p->ternary || !ternary_only);
    off += shape_numel(p->shape);
    // No master: ZeRO-3 gathered the compute copy (a projection's from its codes).
    if (!p->compute.defined() || !p->master.defined() || !in_range) continue;
    if (!p->ternary)
      kernels::cast(p->master, p->compute);
    else if (p->scales.groups == 1)
      kernels::ternary_quantize(p->master, cfg_.ternary_eps, p->compute, p->gamma);
    else
      kernels::ternary_quantize_groups(p->master, cfg_.ternary_eps, p->scales.groups,
                                       p->scales.axis, p->compute, p->gamma);
  }
}

void LM::zero_grad() {
  if (grad_arena_.defined()) grad_arena_.zero_();
}

void LM::pack_ternary(kernels::Activations mode) {
  SPECTRA_CHECK(cfg_.ternary(), "LM::pack_ternary: a FloatLM has no ternary weights to pack");
  for (Block& b : layers_)
    for (auto& [name, linear] : b.projections()) linear->pack(mode);
  head_.pack(mode);
  packed_ = true;
  // The parameters that still have f32 masters (embedding, norms, the head unless int8) into an
  // arena of their own; the old one, which held the latent ternary weights too, is freed with
  // its last view.
  int64_t kept = 0;
  for (auto& [name, p] : named_parameters()) kept += p->master.numel();
  if (kept == master_arena_.numel() && !grad_arena_.defined()) return;
  Tensor arena = Tensor::empty({kept}, master_arena_.dtype(), master_arena_.device());
  int64_t off = 0;
  for (auto& [name, p] : named_parameters()) {
    p->grad = Tensor();
    if (!p->master.defined()) continue;
    const int64_t n = p->master.numel();
    Tensor view = arena.slice(off, off + n).view(p->shape);
    view.copy_from(p->master);
    p->master = view;
    off += n;
  }
  master_arena_ = arena;
  grad_arena_ = Tensor();
}

size_t LM::weight_bytes() const {
  size_t bytes = master_arena_.nbytes();
  for (auto& [name, p] : named_parameters())
    if (p->compute.defined()) bytes += p->compute.nbytes();
  for (const Block& b : layers_)
    for (auto& [name, linear] : b.projections())
      if (linear->packed()) bytes += linear->packed()->nbytes();
  if (head_.int8_rows()) bytes += head_.int8_rows()->nbytes();
  return bytes;
}

void LM::shard_masters(const std::function<MasterStorage(int64_t, int64_t)>& storage) {
  int64_t off = 0;
  for (auto& [name, p] : named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    MasterStorage s = storage(off, off + n);
    off += n;
    if (s.master.defined()) {
      SPECTRA_CHECK(s.master.numel() == n && s.master.dtype() == p->master.dtype(),
                    "shard_masters: {} for {} ({})", s.master.str(), name, p->master.str());
      p->master = s.master.view(p->shape);
      continue;
    }
    SPECTRA_CHECK((p->ternary || p->compute.defined()) && s.compute.numel() == n &&
                      s.compute.dtype() == compute_dtype_,
                  "shard_masters: {} gets no master and compute copy {}", name, s.compute.str());
    p->master = Tensor();
    p->compute = s.compute.view(p->shape);
    if (p->ternary && !p->gamma.defined())
      p->gamma = Tensor::empty({p->scales.groups}, DType::f32, opt_.device);
  }
  master_arena_ = Tensor();
}

void LM::bind_gradients(int64_t begin, int64_t end, const Tensor& storage) {
  SPECTRA_CHECK(storage.numel() == end - begin && storage.dtype() == grad_arena_.dtype(),
                "bind_gradients: {} for [{}, {})", storage.str(), begin, end);
  int64_t off = 0;
  for (auto& [name, p] : named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    if (off >= begin && off + n <= end) {
      p->grad = storage.slice(off - begin, off - begin + n).view(p->shape);
      rebound_ += n;
    } else {
      SPECTRA_CHECK(off + n <= begin || off >= end, "bind_gradients: [{}, {}) splits {}", begin,
                    end, name);
    }
    off += n;
  }
  if (rebound_ == elements_) grad_arena_ = Tensor();
}

ag::Var LM::logits(const Tensor& ids, int64_t batch, int64_t seq) const {
  return forward(ids, batch, seq, [this](const ag::Var& h) { return head_.forward(h); });
}

ag::Var LM::forward(const Tensor& ids, int64_t batch, int64_t seq,
                    const std::function<ag::Var(const ag::Var&)>& head) const {
  // Segment s runs between two tape markers: the one recorded before it runs last in the
  // backward pass (its gradients are complete), the one after it first (they are about to be
  // written).
  SegmentHooks* h = hooks_;
  const bool taping = h && ag::grad_enabled();
  auto run = [&](int s, auto&& forward) {
    if (h) h->before_forward(s);
    if (taping) ag::record([h, s] { h->gradients_ready(s); });
    ag::Var y = forward();
    if (taping) ag::record([h, s] { h->backward_begins(s); });
    return y;
  };
  ag::Var x = run(0, [&] { return embed_.forward(ids); });
  for (size_t i = 0; i < layers_.size(); i++) {
    const Block& b = layers_[i];
    x = run(int(i) + 1, [&] {
      if (recompute_)
        return ag::recompute(
            [&b, batch, seq](const ag::Var& v) { return b.forward(v, batch, seq); }, x);
      return b.forward(x, batch, seq);
    });
  }
  return run(int(layers_.size()) + 1, [&] { return head(norm_.forward(x)); });
}

Tensor LM::logits_cached(const Tensor& ids, const std::vector<CacheSegment>& segments,
                         KVCache& cache) const {
  SPECTRA_CHECK(!opt_.tp || opt_.tp->size() == 1, "LM::logits_cached: no tensor parallelism");
  ag::NoGradGuard no_grad;
  int64_t rows = 0;
  for (const CacheSegment& s : segments) rows += s.tokens;
  SPECTRA_CHECK(rows == ids.numel(), "LM::logits_cached: {} ids for segments of {} tokens",
                ids.numel(), rows);
  // The segment hooks make each segment's weights current (ZeRO gathers; under ZeRO-3 the
  // projections' compute copies exist for two buckets at a time).
  auto ready = [this](int s) {
    if (hooks_) hooks_->before_forward(s);
  };
  ready(0);
  ag::Var x = embed_.forward(ids);
  for (size_t l = 0; l < layers_.size(); l++) {
    ready(int(l) + 1);
    x = layers_[l].forward_cached(x, segments, cache, int64_t(l));
  }
  for (const CacheSegment& s : segments) cache.advance(s.slot, s.tokens);
  ready(int(layers_.size()) + 1);
  return head_.forward(norm_.forward(x)).value();
}

ag::Var LM::loss(const Tensor& ids, const Tensor& targets, int64_t batch, int64_t seq,
                 Tensor* token_losses) const {
  if (head_.int8_rows())  // packed for inference in the int8 mode: the head is no f32 matrix
    return ag::cross_entropy(logits(ids, batch, seq), targets, token_losses);
  if (!opt_.tp || opt_.tp->size() == 1) {
    return forward(ids, batch, seq, [&](const ag::Var& h) {
      return ag::linear_cross_entropy(h, head_.weight().var(), targets,
                                      ag::head_chunk_rows(cfg_.vocab_rows), token_losses);
    });
  }
  const int64_t first_row = cfg_.vocab_rows / opt_.tp_size() * opt_.tp_rank();
  return ag::vocab_parallel_cross_entropy(logits(ids, batch, seq), targets, first_row, *opt_.tp,
                                          token_losses);
}

}  // namespace spectra
