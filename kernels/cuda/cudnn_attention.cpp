// PLACEHOLDER (being written): model.attention: cudnn.
#include "core/error.h"
#include "kernels/cuda/attention_impls.h"

namespace spectra::kernels::cuda {
void cudnn_attention_forward(const Tensor&, const Tensor&, const Tensor&, float, Tensor&, Tensor&) {
  throw UserError("model.attention: cudnn is not available in this build; use reference");
}
void cudnn_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, float, Tensor&, Tensor&, Tensor&) {
  throw UserError("model.attention: cudnn is not available in this build; use reference");
}
}  // namespace spectra::kernels::cuda
