#include "train/graphed_step.h"

#include "autograd/var.h"

namespace spectra {

GraphedMicroBatch::GraphedMicroBatch(const LM& lm, double seed) : lm_(lm), seed_(seed) {
  SPECTRA_CHECK(lm.device().is_cuda(), "GraphedMicroBatch: the model is on {}", lm.device().str());
}

Tensor GraphedMicroBatch::run(const TokenBatch& b) {
  const Device d = lm_.device();
  if (runs_++ == 0) {  // eager: everything built once is built now
    ag::Var loss = lm_.loss(b.ids.to(d), b.targets.to(d), b.batch, b.seq);
    ag::backward(loss, seed_);
    return loss.value();
  }
  if (!graph_.captured()) {
    // The eager run's activations went back to the shared cache; the graph allocates its own,
    // so hand those back to the driver first rather than hold both.
    cuda::empty_cache();
    ids_ = b.ids.to(d);
    targets_ = b.targets.to(d);
    graph_.capture([&] {
      ag::Var loss = lm_.loss(ids_, targets_, b.batch, b.seq);
      ag::backward(loss, seed_);
      loss_ = loss.value();
    });
  } else {
    SPECTRA_CHECK(b.ids.shape() == ids_.shape(),
                  "train.cuda_graph: a micro-batch of {} tokens after one of {}", b.ids.numel(),
                  ids_.numel());
    ids_.copy_from(b.ids);
    targets_.copy_from(b.targets);
  }
  graph_.replay();
  return loss_;
}

}  // namespace spectra
