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
//
// Saving has two halves. The snapshot (collective, at a step boundary) gathers the state into
// host memory on rank 0; the write turns a snapshot into a file. With checkpoint.async the
// trainer hands the write to a CheckpointWriter's thread and goes on training: the step that
// saves pays only for the snapshot (a host copy of weights and moments), and one write at most
// is in flight (the next snapshot waits for it), so a kill during a write loses that checkpoint
// only: the one before it is complete.
#pragma once
#include <memory>
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

// A checkpoint's contents in host memory, on rank 0 (other ranks hold only `path`).
struct CheckpointSnapshot {
  std::string dir, path, recipe_text, data_state;
  int keep = 1;
  int64_t step = 0, adam_step = 0, loss_scale_log2 = 0, loss_scale_clean_steps = 0;
  struct Entry {
    std::string name;
    Tensor parts[3];  // master, m, v: whole tensors, copies owned by the snapshot
  };
  std::vector<Entry> tensors;
};

// Collective over the world (ZeRO shards over dp, split tensors over tp are gathered).
CheckpointSnapshot snapshot_checkpoint(const Recipe& r, const LM& model, const Optimizer& opt,
                                       const TrainingState& state, int world_rank);
// Rank 0: writes the file (tmp, verify, fsync, rename) and keeps the newest `keep`.
void write_checkpoint(const CheckpointSnapshot& s);
// Both at once. Returns the path written (on every rank).
std::string save_checkpoint(const Recipe& r, const LM& model, const Optimizer& opt,
                            const TrainingState& state, int world_rank);

// Writes snapshots on a background thread, one at a time.
class CheckpointWriter {
 public:
  CheckpointWriter() = default;
  ~CheckpointWriter();  // waits for the write in flight
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  // Waits for the previous write, then starts writing `s`.
  void start(CheckpointSnapshot s);
  // Waits until no write is in flight. Returns the paths written since the last call, or the
  // failure of a write as an error message ("" when none failed).
  std::string wait(std::vector<std::string>* written);
  // The same without waiting: what has finished so far.
  std::string poll(std::vector<std::string>* written);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Loads a checkpoint into the model and optimizer: every rank reads its own part (whole
// replicated tensors, its block of split ones). Throws a UserError naming the file and what is
// wrong: not a checkpoint, a failed checksum (corrupt or truncated), or a model configuration
// different from the recipe's (naming the key). The checksums of split tensors cover the whole
// tensor and are not checked here: verify the file first (the trainer has rank 0 do it).
TrainingState load_checkpoint(const std::string& path, const Recipe& r, LM& model, Optimizer& opt);

// Opens and checks every checksum; returns "" when valid, else what is wrong.
std::string verify_checkpoint(const std::string& path);
// The same as one error line, "PATH: refusing checkpoint: WHAT", or "" when valid.
std::string checkpoint_refusal(const std::string& path);

// The newest checkpoint in `dir` that verifies; warns about (and skips) ones that do not.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// `spectra inspect CHECKPOINT`: metadata and verification, as text.
std::string describe_checkpoint(const std::string& path);

bool is_checkpoint_file(const std::string& path);
// The step in a checkpoint's file name (step-00000123.h5), or -1 for another name.
int64_t checkpoint_step(const std::string& path);

}  // namespace spectra
