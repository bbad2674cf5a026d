// --weights / --activations (tools/commands.h): packed TriLM weights for inference.
#include "core/error.h"
#include "layers/lm.h"
#include "tools/commands.h"

namespace spectra::tools {

void apply_weight_options(LM& model, const WeightArgs& a, const std::string& model_path) {
  const kernels::Activations mode = kernels::parse_activations(a.activations, "--activations");
  const bool trilm = model.config().ternary(), cpu = !model.device().is_cuda();
  if (a.weights == "latent" || (a.weights == "auto" && (!trilm || !cpu))) return;
  if (!trilm)
    user_error("{}: a FloatLM has no ternary weights to pack (--weights packed is for TriLMs)",
               model_path);
  if (!cpu)
    user_error("{}: packed weights run on the CPU (add --device cpu, or --weights latent)",
               model_path);
  model.pack_ternary(mode);
}

}  // namespace spectra::tools
