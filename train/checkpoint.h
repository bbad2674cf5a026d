// Training checkpoints: one HDF5 file per checkpoint with the logical (unsharded) layout, so any
// data-parallel layout resumes any checkpoint, and resuming gives the run that never stopped
// (bit for bit on the CPU).
//
// Layout (format "spectra-checkpoint", version 1):
//   /                 attributes: format, format_version, spectra_version, recipe (resolved
//                     YAML), step, adam_step, loss_scale_log2, loss_scale_clean_steps,
//                     data_state (JSON)
//   /params/<name>    f32 master weights        \  each dataset carries a "crc32" attribute of
//   /adam_m/<name>    f32 AdamW first moments    |  its bytes, checked on every load
//   /adam_v/<name>    f32 AdamW second moments  /
// Files are named step-00000123.h5 in checkpoint.dir, written as .tmp, flushed, closed,
// re-verified, fsynced and renamed: a crash or kill at any moment leaves either the previous
// checkpoints or a complete new one, never a file that loads as valid but is not.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "layers/lm.h"
#include "train/optimizer.h"
#include "train/recipe.h"

namespace spectra {

struct TrainingState {
  int64_t step = 0;        // optimizer steps completed
  std::string data_state;  // BatchSource::state()
};

// Collective over the data-parallel group (ZeRO shards are gathered); rank 0 writes.
// Returns the path written (on every rank). Keeps the newest `keep` checkpoints.
std::string save_checkpoint(const Recipe& r, const LM& model, const AdamW& opt,
                            const TrainingState& state, int world_rank);

// Loads a checkpoint into the model and optimizer: every rank reads its own part (whole
// replicated tensors, its block of split ones). Throws a UserError naming the file and what is
// wrong: not a checkpoint, a failed checksum (corrupt or truncated), or a model configuration
// different from the recipe's (naming the key). The checksums of split tensors cover the whole
// tensor and are not checked here: verify the file first (the trainer has rank 0 do it).
TrainingState load_checkpoint(const std::string& path, const Recipe& r, LM& model, AdamW& opt);

// Opens and checks every checksum; returns "" when valid, else what is wrong.
std::string verify_checkpoint(const std::string& path);
// The same as one error line, "PATH: refusing checkpoint: WHAT", or "" when valid.
std::string checkpoint_refusal(const std::string& path);

// The newest checkpoint in `dir` that verifies; warns about (and skips) ones that do not.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// `spectra inspect CHECKPOINT`: metadata and verification, as text.
std::string describe_checkpoint(const std::string& path);

bool is_checkpoint_file(const std::string& path);

}  // namespace spectra
