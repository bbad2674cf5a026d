#include "train/training_model.h"

#include "core/cuda_runtime.h"
#include "train/model_file.h"

namespace spectra {

TrainingModel build_training_model(const Recipe& r, const Placement& p,
                                   const dist::Topology* topo) {
  if (p.device.is_cuda()) cuda::set_device(p.device.index);
  if (p.device.is_cuda() && dist::zero_stage(r.parallel.zero, topo ? topo->dp : 1) == 3)
    user_error(
        "{}: parallel.zero 3 trains on the CPU only for now (its GPU path is not written); "
        "use parallel.zero: 2 on GPUs",
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
