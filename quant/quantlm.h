// QuantLMs: FloatLMs whose seven block projections were quantized after training (GPTQ or
// round-to-nearest; embeddings, LM head and norms stay). SPECTRA.md's QuantLM section.
//
//   LoadedModel m = load_model("floatlm.h5", Device::cpu(), DType::f32);
//   Tensor calib = calibration_tokens("train.h5", {...});
//   QuantLM q = quantize_model(*m.model, &calib, settings, {});
//   save_quantlm("quantlm.h5", m, q);
//
// Layers are processed in order, as GPTQ's reference does with `true_sequential`: each block's
// calibration inputs come from the blocks before it, already quantized, and within a block the
// projections are quantized in four steps, each seeing the inputs the earlier steps' quantized
// weights produce: {q, k, v} (one Hessian: they share their input), {o}, {gate, up}, {down}.
//
// The model file (train/model_file.h) keeps the dequantized weights as its parameters, the
// paper's "Unpacked" QuantLM, which every command reads as the FloatLM it came from. Beside them:
//   attribute  quantization                      JSON: method, bits, group_size, sym, act_order,
//                                                damp, calibration, samples, seq_len, seed
//   /quantization/<parameter name>/scales       f32 [groups, out] (f16 values); the group is
//                                  /zeros        f32 [groups, out] (integers)   named with the
//                                  /g_idx        i32 [in]                       parameter's
//                                                                               dotted HF name
// from which `spectra export --gptq` rebuilds the integer codes exactly (quant::recover_codes).
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "layers/lm.h"
#include "quant/gptq.h"
#include "train/model_file.h"

namespace spectra::quant {

struct QuantSettings {
  Options options;
  std::string calibration;  // the token file calibrated on ("" for round-to-nearest without)
  int64_t samples = 0, seq_len = 0;
  uint64_t seed = 0;
};

struct ProjectionResult {
  std::string name;   // "model.layers.3.mlp.down_proj.weight"
  QuantizedWeight q;  // weight undefined when read back from a file
  // Mean over the calibration tokens of ‖(W − Ŵ)x‖² for the method used and for round-to-
  // nearest on the same inputs (NaN without calibration data).
  double error = NAN, rtn_error = NAN;
};

struct QuantLM {
  QuantSettings settings;
  std::vector<ProjectionResult> projections;
};

struct RunOptions {
  int64_t batch = 8;  // calibration sequences per forward pass
  bool progress = true;
};

// Quantizes `model`'s projections in place. calibration: i32 [samples·seq_len] token ids
// (quant/calibration.h), required for GPTQ; for round-to-nearest it only adds the errors.
QuantLM quantize_model(LM& model, const Tensor* calibration, const QuantSettings& settings,
                       const RunOptions& run);

// Writes the model file: the loaded model's recipe and tokenizer, its (quantized) parameters
// and the description above.
void save_quantlm(const std::string& path, const LoadedModel& model, const QuantLM& q);

// The description in a model file; nullopt for a model that was not quantized. UserError for a
// malformed one.
std::optional<QuantLM> read_quantlm(const std::string& path);

}  // namespace spectra::quant
