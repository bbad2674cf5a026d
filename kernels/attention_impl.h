// Which implementation computes causal attention on CUDA: the recipe's model.attention. All three
// compute the same function (kernels/attention.h) and are checked against the CPU reference; the
// CPU always runs its reference, whatever is chosen.
//   reference  f32 math on the CUDA cores (kernels/cuda/attention.cu): any float dtype
//   flash      the hand-written tensor-core kernels (kernels/cuda/flash_*.cu): bf16, f16
//   cudnn      cuDNN's fused SDPA through cudnn-frontend (kernels/cuda/cudnn_attention.cpp)
// The values are stable: they name the choice in recipes and benchmark output.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace spectra::kernels {

enum class AttentionImpl : uint8_t { reference = 0, flash = 1, cudnn = 2 };

inline constexpr const char* kAttentionImplChoices = "reference|flash|cudnn";

inline const char* attention_impl_name(AttentionImpl a) {
  switch (a) {
    case AttentionImpl::flash:
      return "flash";
    case AttentionImpl::cudnn:
      return "cudnn";
    default:
      return "reference";
  }
}

inline std::optional<AttentionImpl> parse_attention_impl(std::string_view s) {
  for (AttentionImpl a : {AttentionImpl::reference, AttentionImpl::flash, AttentionImpl::cudnn})
    if (s == attention_impl_name(a)) return a;
  return std::nullopt;
}

}  // namespace spectra::kernels
