// The LLaMA-style pre-norm decoder block of SPECTRA.md:
//   h = x + o_proj(attention(rope(q_proj(n1(x))), rope(k_proj(n1(x))), v_proj(n1(x))))
//   y = h + down_proj(silu(gate_proj(n2(h))) · up_proj(n2(h)))
// The seven projections are ternary in a TriLM and float in a FloatLM; nothing else differs.
// Under tensor parallelism (LayerOptions::tp) q/k/v and gate/up are column-parallel and o and
// down row-parallel, so each rank computes heads/tp heads and ffn/tp of the MLP, and each block
// communicates twice forward (after o and down) and twice backward (before q/k/v, gate/up).
#pragma once
#include "layers/kv_cache.h"
#include "layers/linear.h"
#include "layers/model_config.h"

namespace spectra {

class Attention : public Module {
 public:
  friend class Block;
  Attention(const ModelConfig& cfg, const LayerOptions& opt);
  // x: [B*T, d] -> [B*T, d]
  ag::Var forward(const ag::Var& x, int64_t batch, int64_t seq) const;
  // Inference: x [N, d] holds the segments' rows in order; each segment's queries sit after its
  // slot's cached positions and attend to them and to themselves (layers/kv_cache.h).
  ag::Var forward_cached(const ag::Var& x, const std::vector<CacheSegment>& segments,
                         KVCache& cache, int64_t layer) const;

 private:
  Linear q_, k_, v_, o_;
  int64_t heads_, head_dim_;  // heads_: this rank's
  float theta_;
  kernels::AttentionImpl impl_;
};

class MLP : public Module {
 public:
  friend class Block;
  MLP(const ModelConfig& cfg, const LayerOptions& opt);
  ag::Var forward(const ag::Var& x) const;

 private:
  Linear gate_, up_, down_;
};

class Block : public Module {
 public:
  Block(const ModelConfig& cfg, const LayerOptions& opt);
  ag::Var forward(const ag::Var& x, int64_t batch, int64_t seq) const;
  ag::Var forward_cached(const ag::Var& x, const std::vector<CacheSegment>& segments,
                         KVCache& cache, int64_t layer) const;
  // The seven projections in the order the forward pass uses them, with their names below
  // the block ("self_attn.q_proj", ..., "mlp.down_proj").
  std::vector<std::pair<std::string, Linear*>> projections();
  std::vector<std::pair<std::string, const Linear*>> projections() const;

 private:
  RMSNorm input_norm_, post_attention_norm_;
  Attention attn_;
  MLP mlp_;
};

}  // namespace spectra
