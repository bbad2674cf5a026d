// spectra export MODEL --format gguf: a model file as a llama.cpp GGUF file (tools/gguf.h), with
// the names, layouts and metadata llama.cpp's LLaMA loader reads (docs/formats.md).
#pragma once
#include <string>

#include "train/model_file.h"

namespace spectra {

struct GgufOptions {
  std::string type = "f16";  // f16 | tq1_0 | tq2_0 (the projections; TQ: TriLMs only)
  // What to do with a TriLM projection that TQ cannot hold exactly (a 256-weight block that
  // spans two scale blocks, or rows not a multiple of 256): "error" or "f16" (keep it in F16).
  std::string tq_fallback = "error";
};

void export_gguf(const LoadedModel& model, const std::string& model_path, const std::string& out,
                 const GgufOptions& options);

}  // namespace spectra
