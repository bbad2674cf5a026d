#include "layers/model_config.h"

#include <fmt/format.h>

namespace spectra {

std::vector<ConfigDifference> function_differences(const ModelConfig& have,
                                                   const ModelConfig& want) {
  std::vector<ConfigDifference> out;
  auto compare = [&](const char* key, const auto& a, const auto& b, bool shape) {
    if (a != b) out.push_back({key, fmt::format("{}", a), fmt::format("{}", b), shape});
  };
  compare("model.kind", model_kind_name(have.kind), std::string(model_kind_name(want.kind)), false);
  compare("model.vocab_size", have.vocab_size, want.vocab_size, false);
  compare("model.vocab_rows", have.vocab_rows, want.vocab_rows, true);
  compare("model.hidden", have.hidden, want.hidden, true);
  compare("model.ffn", have.ffn, want.ffn, true);
  compare("model.heads", have.heads, want.heads, false);
  compare("model.layers", have.layers, want.layers, true);
  compare("model.rope_theta", have.rope_theta, want.rope_theta, false);
  compare("model.norm_eps", have.norm_eps, want.norm_eps, false);
  if (have.ternary() || want.ternary()) {  // a FloatLM has no ternary scales
    compare("model.ternary_eps", have.ternary_eps, want.ternary_eps, false);
    compare("model.ternary_shards", have.ternary_shards, want.ternary_shards, false);
  }
  return out;
}

}  // namespace spectra
