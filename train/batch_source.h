// Where the trainer's batches come from, behind one interface: the byte-level text corpus
// (data.text) or prepared token datasets (data.datasets, read by data/loader.h). Each rank of a
// data-parallel group draws disjoint micro-batches; the state is a JSON string the checkpoint
// stores, and restoring it continues the same stream.
#pragma once
#include <memory>
#include <string>

#include "data/byte_corpus.h"
#include "data/tokenizer.h"
#include "train/recipe.h"

namespace spectra {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual TokenBatch next() = 0;                    // this rank's next training micro-batch
  virtual TokenBatch val_batch(int64_t index) = 0;  // held-out micro-batch `index`
  virtual std::string state() const = 0;            // after the last next()
  virtual void restore(const std::string& state) = 0;
  // Bytes of source text per token, to report bits per byte (1 for the byte-level corpus).
  virtual double bytes_per_token() const = 0;
  // Tokens one pass over the training split holds (the plan's epochs), and a line saying what
  // the data is.
  virtual int64_t train_tokens() const = 0;
  virtual std::string describe() const = 0;
};

// dp_rank of dp_size: this rank's share of each global batch. Opening the data checks it:
// missing, foreign or truncated files, a tokenizer that does not match the datasets or the
// model's vocabulary, too little data for one window: a UserError naming file and key.
std::unique_ptr<BatchSource> make_batch_source(const Recipe& r, int dp_rank, int dp_size);

// The recipe's data.tokenizer, loaded and checked to fit model.vocab_size.
Tokenizer check_tokenizer(const Recipe& r);

}  // namespace spectra
