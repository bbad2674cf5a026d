#include "train/training_model.h"

#include <cstdlib>
#include <string>

#include "core/cuda_runtime.h"
#include "train/model_file.h"

namespace spectra {

TrainingModel build_training_model(const Recipe& r, const Placement& p,
                                   const dist::Topology* topo) {
  if (p.device.is_cuda()) cuda::set_device(p.device.index);
  // ZeRO-3's GPU path (device packing, NCCL gathers of the codes) is written but has not run on
  // GPUs yet (it needs two): off unless asked for, until scripts/gpu-check has passed it.
  const char* unverified = std::getenv("SPECTRA_UNVERIFIED_ZERO3_GPU");
  if (p.device.is_cuda() && dist::zero_stage(r.parallel.zero, topo ? topo->dp : 1) == 3 &&
      !(unverified && std::string(unverified) == "1"))
    user_error(
        "{}: parallel.zero 3 on GPUs has not been verified on GPUs yet (it runs on the CPU); "
        "use parallel.zero: 2 on GPUs (SPECTRA_UNVERIFIED_ZERO3_GPU=1 runs it anyway)",
        r.where("parallel.zero"));
  TrainingModel t;
  t.model = std::make_unique<LM>(
      r.model, LayerOptions{DType::f32, p.device, topo ? &topo->tp_group : nullptr},
      p.compute_dtype);
  t.model->initialize(r.train.seed);
  if (!r.train.init.empty()) load_weights(r.train.init, *t.model);  // a resume overwrites them
  t.model->set_recompute(r.train.recompute == "full");
  t.optimizer =
      std::make_unique<Optimizer>(*t.model, r.optimizer, p.compute_dtype == DType::f16,
                                  topo ? &topo->dp_group : nullptr, data_parallel_options(r));
  return t;
}

}  // namespace spectra
