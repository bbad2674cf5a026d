#include "train/placement.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "dist/world.h"

namespace spectra {

bool is_device_word(const std::string& d) {
  const bool cuda_n =
      d.starts_with("cuda:") && d.size() > 5 &&
      std::all_of(d.begin() + 5, d.end(), [](char c) { return c >= '0' && c <= '9'; });
  return d == "auto" || d == "cpu" || d == "cuda" || cuda_n;
}

std::string not_a_device_word(const std::string& d) {
  return fmt::format("device '{}' is not one of auto, cpu, cuda, cuda:N", d);
}

Device resolve_device(const std::string& d, const std::string& where) {
  if (!is_device_word(d)) user_error("{}: {}", where, not_a_device_word(d));
  if (d == "cpu") return Device::cpu();
  const int gpus = cuda::available() ? cuda::device_count() : 0;
  if (d == "auto" && gpus == 0) return Device::cpu();
  if (gpus == 0)
    user_error("{}: device '{}' but no usable GPU is present (use cpu or auto)", where, d);
  if (d == "cuda" || d == "auto") return Device::cuda(dist::local_rank() % gpus);
  const Device n = Device::parse(d);
  if (n.index >= gpus)
    user_error("{}: device '{}' but this machine has {} GPU{} (cuda:0 to cuda:{})", where, d, gpus,
               gpus == 1 ? "" : "s", gpus - 1);
  return n;
}

DType resolve_precision(const std::string& p, Device d, const std::string& where) {
  if (p == "auto") return d.is_cuda() ? DType::bf16 : DType::f32;
  if (p == "f32") return DType::f32;
  if (p != "bf16" && p != "fp16")
    user_error("{}: precision '{}' is not one of auto, f32, bf16, fp16", where, p);
  if (d.is_cpu())
    user_error("{}: precision {} needs a GPU; the CPU computes in f32 (use f32 or auto)", where, p);
  return p == "bf16" ? DType::bf16 : DType::f16;
}

Placement resolve_placement(const Recipe& r) {
  Placement p;
  p.device = resolve_device(r.train.device, r.where("train.device") + ": key 'train.device'");
  p.compute_dtype = resolve_precision(r.train.precision, p.device,
                                      r.where("train.precision") + ": key 'train.precision'");
  return p;
}

}  // namespace spectra
