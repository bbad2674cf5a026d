// The language model: embedding -> blocks -> final RMSNorm -> LM head (untied), as
// LlamaForCausalLM names them. TriLM and FloatLM differ only in the blocks' projections.
//
//   LM lm(cfg, {DType::f32, Device::cpu()}, DType::f32);
//   lm.initialize(seed);                        // from (seed, parameter name) only
//   ag::Var loss = lm.loss(ids, targets, B, T); // ids/targets: [B*T] i32 on lm.device()
//   ag::backward(loss);
#pragma once
#include <deque>
#include <functional>

#include "layers/transformer.h"

namespace spectra {

// Called around the segments of a training forward pass (the embedding, each block, then the
// final norm with the LM head): the data-parallel engine (train/optimizer.h) overlaps its
// communication with them. The backward calls come from markers on the autograd tape, so they
// arrive in reverse segment order, also under activation recomputation.
struct SegmentHooks {
  virtual ~SegmentHooks() = default;
  virtual void before_forward(int segment) = 0;   // its weights are about to be read
  virtual void backward_begins(int segment) = 0;  // its gradients are about to be written
  virtual void gradients_ready(int segment) = 0;  // its gradients are complete
};

class LM : public Module {
 public:
  // compute_dtype: the dtype activations and the forward's weights use (f32 on the CPU; bf16 or
  // f16 on the GPU, when parameters then carry a 16-bit compute copy).
  LM(const ModelConfig& cfg, const LayerOptions& opt, DType compute_dtype);

  const ModelConfig& config() const { return cfg_; }
  Device device() const { return opt_.device; }
  DType compute_dtype() const { return compute_dtype_; }
  const dist::Group* tp_group() const { return opt_.tp; }  // null: no tensor parallelism
  // Activation recomputation (train.recompute: full): each block keeps only its input for the
  // backward pass and runs its forward again there (autograd/recompute.h).
  void set_recompute(bool on) { recompute_ = on; }

  // Fills every parameter from (seed, its name): normal(0, init_std) for weights, 1 for norm
  // gains. Independent of creation order, device and parallel layout.
  void initialize(uint64_t seed);
  // Copies the masters into the compute copies (after initialization, loading or a step that
  // did not write them; TriLM projections are quantized), for every parameter or those whose
  // arena offset lies in [begin, end), or only the TriLM projections among them.
  void refresh_compute();
  void refresh_compute(int64_t begin, int64_t end, bool ternary_only = false);
  void zero_grad();

  // Inference on packed TriLM weights (Linear::pack): every ternary projection packs its weight
  // (and in the int8 mode the LM head its rows to int8), the latent masters and every gradient
  // are freed and the float parameters move to an arena of their own, so the ternary matrices
  // take their 2-bit codes in memory, not f32. From then on the model runs only without
  // gradients (logits, logits_cached, loss under NoGradGuard). CPU, TriLM, no tensor
  // parallelism. Called again, it switches the activation mode (not back from int8).
  void pack_ternary(kernels::Activations mode);
  bool packed() const { return packed_; }
  // Bytes of weights held now: the master arena, compute copies and packed codes with their γ.
  size_t weight_bytes() const;

  // Every parameter is a view into these flat arenas, in named_parameters() order (the master
  // arena is undefined after shard_masters).
  const Tensor& master_arena() const { return master_arena_; }
  const Tensor& grad_arena() const { return grad_arena_; }
  int64_t parameter_elements() const { return elements_; }
  // The arena offset where each segment's parameters begin (see SegmentHooks), in order.
  const std::vector<int64_t>& segment_offsets() const { return segment_offsets_; }
  // The same, and the arena's length, for one rank of a TP group of `tp` from the config alone,
  // without building the model: the training plan lays out models too large to build with it
  // (the constructor checks its own arena against it).
  struct ArenaLayout {
    std::vector<int64_t> segment_offsets;
    int64_t elements = 0;
  };
  static ArenaLayout arena_layout(const ModelConfig& cfg, int tp);
  void set_segment_hooks(SegmentHooks* hooks) { hooks_ = hooks; }
  // ZeRO-3 (train/optimizer.cpp): the latent weights live only as the data-parallel engine's
  // shards. storage(begin, end) gives each parameter (by arena range) its new storage: an f32
  // float parameter a master (the engine's replicated copy, holding its weights already); a
  // float parameter with a 16-bit compute copy, and a TriLM projection, none but a compute copy
  // ([end - begin] in the compute dtype: the engine's replicated copy, or for a projection what
  // its gathered codes fill before the passes read it). The master arena is freed.
  struct MasterStorage {
    Tensor master, compute;
  };
  void shard_masters(const std::function<MasterStorage(int64_t begin, int64_t end)>& storage);
  // Moves the gradients of the parameters inside [begin, end) (whole parameters) into `storage`
  // ([end - begin] f32, zeroed by its owner). Once every parameter has moved, the gradient arena
  // is freed: ZeRO-2 keeps gradients in a small ring of bucket buffers instead.
  void bind_gradients(int64_t begin, int64_t end, const Tensor& storage);

  // ids: [B*T] i32. Returns logits [B*T, vocab_rows] in the compute dtype (under tensor
  // parallelism: this rank's vocab_rows/tp columns of them).
  ag::Var logits(const Tensor& ids, int64_t batch, int64_t seq) const;
  // Inference with a key/value cache (no gradients, no tensor parallelism): ids [N] are the
  // segments' tokens one after another, each continuing its cache slot. Returns the logits
  // [N, vocab_rows] and advances every segment's slot by its tokens.
  Tensor logits_cached(const Tensor& ids, const std::vector<CacheSegment>& segments,
                       KVCache& cache) const;
  // Layer by layer (post-training quantization runs the blocks one at a time): the embedding's
  // output for ids [B*T], and the blocks, "model.layers.<i>".
  ag::Var embed(const Tensor& ids) const { return embed_.forward(ids); }
  int64_t blocks() const { return int64_t(layers_.size()); }
  Block& block(int64_t i) { return layers_[size_t(i)]; }
  const Block& block(int64_t i) const { return layers_[size_t(i)]; }
  // Mean next-token cross-entropy; targets < 0 are ignored. A one-element value in the acc
  // dtype on the model's device. Without tensor parallelism the LM head and the loss run
  // fused, a chunk of rows at a time (ag::linear_cross_entropy): no [B*T, vocab] logits.
  ag::Var loss(const Tensor& ids, const Tensor& targets, int64_t batch, int64_t seq,
               Tensor* token_losses = nullptr) const;

 private:
  ModelConfig cfg_;
  LayerOptions opt_;
  DType compute_dtype_;
  Embedding embed_;
  std::deque<Block> layers_;  // deque: blocks are not movable (Modules hold child pointers)
  ModuleGroup layers_container_;
  RMSNorm norm_;
  Linear head_;
  ModuleGroup model_;  // the "model." prefix of HF names
  Tensor master_arena_, grad_arena_;
  int64_t elements_ = 0;
  std::vector<int64_t> segment_offsets_;
  int64_t rebound_ = 0;  // gradient elements moved out of the arena (bind_gradients)
  SegmentHooks* hooks_ = nullptr;
  bool recompute_ = false;
  bool packed_ = false;  // pack_ternary ran: training state is gone

  // The forward pass through the segments (see SegmentHooks), with `head` mapping the final
  // norm's output to what the last segment returns.
  ag::Var forward(const Tensor& ids, int64_t batch, int64_t seq,
                  const std::function<ag::Var(const ag::Var&)>& head) const;
};

}  // namespace spectra
