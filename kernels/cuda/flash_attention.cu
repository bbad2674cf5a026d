// PLACEHOLDER (being written): model.attention: flash.
#include "core/error.h"
#include "kernels/cuda/attention_impls.h"

namespace spectra::kernels::cuda {
void flash_attention_forward(const Tensor&, const Tensor&, const Tensor&, float, Tensor&, Tensor&) {
  throw UserError("model.attention: flash is not available in this build; use reference");
}
void flash_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, float, Tensor&, Tensor&, Tensor&) {
  throw UserError("model.attention: flash is not available in this build; use reference");
}
}  // namespace spectra::kernels::cuda
