// train.cuda_graph: a micro-batch's forward and backward pass captured once in a CUDA graph and
// replayed for every later micro-batch, so the step costs one launch instead of one per kernel
// (hundreds; what dominates small models on a fast GPU).
//
// The first micro-batch runs eagerly: it builds what is built once (cuBLASLt's workspace and
// algorithms, cuDNN's graphs, the caching allocator's blocks). The second is captured with its
// tokens in fixed device buffers, then replayed; every later one copies its tokens there and
// replays. The optimizer step stays outside the graph (its learning rate changes every step).
// One process only (no data or tensor parallelism: their collectives are not captured) and no
// fp16 loss scaling (the captured backward's seed is a constant).
//
//   GraphedMicroBatch g(lm, 1.0 / accum);
//   for (micro ...) loss_sum.add(g.run(data.next()), 1.0 / accum);
#pragma once
#include "core/cuda_runtime.h"
#include "data/byte_corpus.h"
#include "layers/lm.h"

namespace spectra {

class GraphedMicroBatch {
 public:
  // seed: the backward pass's d(loss) (1 / gradient-accumulation steps).
  GraphedMicroBatch(const LM& lm, double seed);
  // The forward and backward pass of batch b (host tokens); gradients accumulate into the
  // model's. Returns the mean loss, on the device: valid until the next call.
  Tensor run(const TokenBatch& b);

 private:
  const LM& lm_;
  double seed_;
  int64_t runs_ = 0;
  Tensor ids_, targets_, loss_;  // the captured graph's inputs and output
  cuda::Graph graph_;
};

}  // namespace spectra
