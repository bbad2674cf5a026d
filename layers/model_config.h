// The shape of a Spectra model, as the recipe's `model` section gives it (SPECTRA.md's table).
#pragma once
#include <cstdint>
#include <string>

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
  // Training FLOPs per token: 6·(non-embedding matmul params + head) plus attention's
  // 6·L·context·d (forward 2·2·T·d/2 per token with causal masking counted in full, ×3).
  double train_flops_per_token() const {
    double matmul_params =
        double(layers) * (4 * hidden * hidden + 3 * hidden * ffn) + double(vocab_rows) * hidden;
    return 6.0 * matmul_params + 12.0 * double(layers) * double(context) * double(hidden);
  }
};

inline const char* model_kind_name(ModelKind k) {
  return k == ModelKind::trilm ? "trilm" : "floatlm";
}

}  // namespace spectra
