// ZeRO-3's weights (parallel.zero: 3, dist/data_parallel.h): each rank keeps only its shard of the
// latent f32 weights, which AdamW updates; what the forward and backward passes read is rebuilt
// on every rank after each update from what the ranks send:
//   - a TriLM projection travels as 2-bit codes, in the inference packing
//     (kernels::PackedTernary). Each rank sums |w| per scale block over its rows of the matrix;
//     one all-gather of those sums (a few numbers per matrix), added in rank order, gives every
//     rank the same γ; each rank packs its rows with it; an all-gather of the codes gives every
//     rank the whole PackedTernary: 2 bits a weight on the wire instead of ZeRO-2's 32;
//   - every other parameter (embedding, norms, LM head; all of a FloatLM) travels and stays in
//     the dtype the passes read it in (ArenaParam::dtype): the compute dtype in a 16-bit run
//     (the owner casts, as ordinary ZeRO-3 gathers), f32 otherwise and for the norm gains.
// One replicated byte buffer holds it all, each parameter's bytes in arena order (from a 16-byte
// boundary), so a rank's part of a bucket is one run of bytes and each bucket one all-gather
// that writes straight into what the model reads. Shards are cut at row boundaries
// (split_rows), so a rank packs whole rows.
//
//   ShardedWeights w(params, buckets, rank, eps, initial);  // every rank: same params, buckets
//   dp.all_gather(w.abs_sums(latent), all);                 // after each update
//   w.set_gammas(all);
//   w.encode(latent);
//   dp.all_gather_async(w.bucket_bytes(i), w.byte_counts(i));  // each bucket i; then the model
//                                                              // reads packed(k), floats(k)
#pragma once
#include <utility>
#include <vector>

#include "kernels/ternary_packed.h"

namespace spectra::dist {

// A parameter as the data-parallel engine sees it: its arena range, its row length (cols; a
// 1-D parameter is one row) and, for a TriLM projection, its scale blocks.
struct ArenaParam {
  int64_t begin = 0, end = 0;
  bool tp_split = false;  // its gradient differs over the TP group (a block of a split tensor)
  int64_t cols = 0;       // 0: end - begin (one row)
  bool ternary = false;
  int64_t groups = 1;
  int axis = 0;
  // Zero 3: the dtype a float parameter travels and is read in (its compute copy's, or f32).
  DType dtype = DType::f32;
  int64_t row_length() const { return cols > 0 ? cols : end - begin; }
};

// [begin, end) of the arena in `parts` pieces cut at row boundaries of `params`, each as near
// size/parts as rows allow: each piece's length, in order.
std::vector<int64_t> split_rows(int64_t begin, int64_t end, int parts,
                                const std::vector<ArenaParam>& params);

class ShardedWeights {
 public:
  struct Bucket {
    int64_t begin, end;
    std::vector<int64_t> counts;  // each rank's part of [begin, end), in rank order
  };
  // float_weights: the arena's initial weights (only the float parameters' are read).
  ShardedWeights(const std::vector<ArenaParam>& params, std::vector<Bucket> buckets, int rank,
                 float eps, const Tensor& float_weights);

  // After each update, from `latent` (this rank's shard: its parts one after another, as the
  // engine lays them out, f32 on the device of the initial weights, where the replicated
  // buffer lives too; on a GPU the kernels of kernels/ternary_packed_cuda.h pack there):
  //   1. abs_sums: this rank's Σ|w| per scale block of every projection (f64 [scale_blocks()]);
  //   2. set_gammas: every rank's sums, in rank order (f64 [ranks · scale_blocks()]), give every
  //      γ, added in rank order so that every rank computes the same bits;
  //   3. encode: this rank's rows as codes and its floats in their dtype, in place in the
  //      replicated buffer, ready to be all-gathered.
  Tensor abs_sums(const Tensor& latent) const;
  void set_gammas(const Tensor& all_sums);
  void encode(const Tensor& latent);
  int64_t scale_blocks() const { return groups_; }

  // Bucket i's replicated bytes (u8), and each rank's part of them.
  Tensor bucket_bytes(size_t i) const;
  const std::vector<int64_t>& byte_counts(size_t i) const { return bucket_[i].byte_counts; }

  // Parameter k's weights once its bucket has arrived: a projection's codes and γ, or a float
  // parameter's values ([end - begin] in its dtype, a view into the replicated buffer).
  const kernels::PackedTernary& packed(size_t k) const { return param_[k].packed; }
  Tensor floats(size_t k) const;

  // The replicated bytes: the projections' codes, the float parameters' values (and in all,
  // with the padding between parameters).
  int64_t code_bytes() const { return code_bytes_; }
  int64_t float_bytes() const { return float_bytes_; }
  int64_t bytes() const { return wire_.numel(); }

 private:
  struct ParamState {
    ArenaParam p;
    int64_t byte_base = 0, gamma_base = 0;
    kernels::PackedTernary packed;  // views into wire_ and gamma_
  };
  struct Piece {  // a parameter's overlap with one of this rank's parts
    size_t param;
    int64_t begin, end;  // arena positions
    int64_t local;       // where it lies in the shard
  };
  struct BucketState {
    int64_t byte_begin = 0, byte_end = 0;
    std::vector<int64_t> byte_counts;
  };
  // Replicated bytes before arena position x (a row boundary).
  int64_t bytes_before(int64_t x) const;
  size_t param_at(int64_t x) const;  // the parameter holding position x (x < arena end)
  std::pair<int64_t, int64_t> rows_of(const Piece& c) const;  // a projection piece's rows
  void check_shard(const Tensor& latent) const;

  std::vector<ParamState> param_;
  std::vector<Bucket> buckets_;
  std::vector<BucketState> bucket_;
  std::vector<Piece> pieces_;
  int64_t shard_ = 0;  // this rank's elements
  int rank_ = 0;
  float eps_ = 0;
  int64_t groups_ = 0, code_bytes_ = 0, float_bytes_ = 0;
  Tensor wire_, gamma_;  // replicated: u8, f32 [groups_]
};

}  // namespace spectra::dist
