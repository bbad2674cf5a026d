// Trained-model files (HDF5): the resolved recipe text and every parameter's f32 master under its
// Hugging Face name. Written to a temporary name and renamed, so a crash never leaves a partial
// file under the real name. (Training checkpoints,
// with optimizer and data state, are train/checkpoint.h.)
//
// Layout:  /               attributes format="spectra-model", format_version=1, recipe (YAML)
//          /params/<name>  f32 dataset with the parameter's logical shape
//          /tokenizer.json u8 dataset: the HF tokenizer.json bytes, for models trained on
//                          tokenized data (absent for byte-level models)
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "layers/lm.h"
#include "train/recipe.h"

namespace spectra {

namespace h5 {
class File;
}

// Under tensor parallelism every rank of the model's TP group calls it (the split parameters
// are gathered whole) and one of them, `write`, writes.
// `extra`, when given, adds its own attributes and datasets before the file is closed (a QuantLM's
// description, quant/quantlm.h), so they appear with the rest, atomically. `weights`, when
// defined, is this rank's whole arena of latent weights to write instead of the parameters'
// masters (Optimizer::full_weights: under ZeRO-3 no master holds a TriLM projection).
void save_model(const std::string& path, const LM& model, const Recipe& recipe, bool write = true,
                const std::function<void(h5::File&)>& extra = {}, const Tensor& weights = Tensor());

struct LoadedModel {
  Recipe recipe;
  std::unique_ptr<LM> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null: byte-level
  std::string tokenizer_json;            // its tokenizer.json text ("" when byte-level)
};
// Throws a UserError naming the file and what is wrong (missing, not HDF5, not a spectra model,
// missing or mis-shaped parameter).
// tp: split the model over this tensor-parallel group (every rank of it calls; null: whole).
LoadedModel load_model(const std::string& path, Device device, DType compute_dtype,
                       const dist::Group* tp = nullptr);

// Whether a file's model (`file`, from the recipe stored in it) fits the model `want` that a
// command asks for, decided here for every reader. Strict (a resume, quantizing with a QuantLM
// recipe): any difference that changes the function the weights compute is a UserError naming
// the file, the key, both values and the --set that matches the file, then `fix`. Lenient
// (train.init): a difference in shape is still an error; any other is a warning naming the key
// (the user may mean it, as when extending the context with another rope_theta).
void check_model_fits(const std::string& path, const ModelConfig& file, const ModelConfig& want,
                      bool lenient, const std::string& fix);

// A stored parameter against the model's: UserError naming the file and the parameter when it
// is not f32 of the expected shape.
void check_stored_parameter(const std::string& path, const std::string& name, const Shape& stored,
                            DType dtype, const Shape& want);

// Fills `model`'s parameters from a model file's (each rank its tensor-parallel block): the
// starting point of a run with train.init, checked leniently against `recipe_model`
// (check_model_fits). UserError naming the file when a parameter is missing or shaped
// differently.
void load_weights(const std::string& path, LM& model);

}  // namespace spectra
