// The shape of a Spectra model, as the recipe's `model` section gives it (SPECTRA.md's table).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/attention_impl.h"

namespace spectra {

enum class ModelKind : uint8_t { trilm = 0, floatlm = 1 };

struct ModelConfig {
  ModelKind kind = ModelKind::trilm;
  int64_t vocab_size = 256;  // real vocabulary (tokenizer entries)
  int64_t vocab_rows = 256;  // embedding/LM-head rows: vocab_size padded (Megatron rule)
  int64_t hidden = 64;
  int64_t ffn = 172;  // SwiGLU inner size
  int64_t heads = 4;
  int64_t layers = 2;
  int64_t context = 256;  // max sequence length
  float rope_theta = 10000.f;
  float norm_eps = 1e-5f;
  float ternary_eps = 1e-5f;  // TriLM γ = eps + mean|W|
  // TriLM scales per projection: γ per block of 1/ternary_shards of each matrix, split as
  // tensor parallelism splits it (the paper's per-shard scales). Recipes default it to
  // parallel.tp; a single process set to 2 computes what a tp=2 run does.
  int64_t ternary_shards = 1;
  float init_std = 0.02f;
  // How attention is computed on CUDA, not what: every implementation computes the same
  // function, so model files do not store it and function_differences ignores it.
  kernels::AttentionImpl attention = kernels::AttentionImpl::reference;

  int64_t head_dim() const { return hidden / heads; }
  bool ternary() const { return kind == ModelKind::trilm; }

  // N = L·(4d² + 3·d·ffn + 2d) + d + 2·V·d (untied embedding and head, no biases), with V the
  // embedding rows actually allocated.
  int64_t parameter_count() const {
    return layers * (4 * hidden * hidden + 3 * hidden * ffn + 2 * hidden) + hidden +
           2 * vocab_rows * hidden;
  }
  // The same with the real vocabulary: the figure SPECTRA.md's table prints.
  int64_t parameter_count_unpadded() const {
    return parameter_count() - 2 * (vocab_rows - vocab_size) * hidden;
  }
  // Training FLOPs per token of sequences of `seq` tokens (0: the context): 6·(non-embedding
  // matmul params + head) plus attention's 12·L·seq·d: per token and layer the forward pass
  // does QKᵀ and AV, 2·seq·d each (causal masking counted in full, as PaLM's MFU counts it),
  // and backward twice that.
  double train_flops_per_token(int64_t seq = 0) const {
    double matmul_params =
        double(layers) * (4 * hidden * hidden + 3 * hidden * ffn) + double(vocab_rows) * hidden;
    return 6.0 * matmul_params +
           12.0 * double(layers) * double(seq > 0 ? seq : context) * double(hidden);
  }
};

inline const char* model_kind_name(ModelKind k) {
  return k == ModelKind::trilm ? "trilm" : "floatlm";
}

// One setting in which two models differ, by its recipe key, with both values as text.
struct ConfigDifference {
  std::string key;  // "model.rope_theta"
  std::string have, want;
  bool shape = false;  // it changes a parameter's shape: the weights cannot be loaded at all
};
// Every setting that changes the function the weights compute, where `have` (a file's model)
// and `want` (the recipe's) differ: kind, vocab_size, vocab_rows, hidden, ffn, heads, layers,
// rope_theta, norm_eps, and for TriLMs ternary_eps and ternary_shards. Not context or init_std: the
// same weights compute the same function at any context, and init_std only draws the first weights.
std::vector<ConfigDifference> function_differences(const ModelConfig& have,
                                                   const ModelConfig& want);

}  // namespace spectra
