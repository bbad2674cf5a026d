#include "kernels/peak_flops.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "core/cuda_runtime.h"
#include "core/tensor.h"
#include "kernels/matmul.h"

namespace spectra::kernels {

namespace {

struct GpuPeak {
  const char* name;  // matched as a substring of the device name, first match wins
  double half, f32;  // TFLOP/s: dense bf16/fp16 tensor cores, f32 CUDA cores
};
constexpr GpuPeak kGpus[] = {
    {"H100 PCIe", 756, 51.2}, {"H100 NVL", 835, 60}, {"H100", 989, 67},  {"H200", 989, 67},
    {"A100", 312, 19.5},      {"L40S", 362, 91.6},   {"A10G", 70, 31.2},
};

double gpu_peak(int device, DType compute) {
  const std::string name = spectra::cuda::device_name(device);
  for (const GpuPeak& g : kGpus)
    if (name.find(g.name) != std::string::npos)
      return 1e12 * (compute == DType::f32 ? g.f32 : g.half);
  return 0;
}

double measured_cpu_peak(DType compute) {
  constexpr int64_t n = 1024;
  Tensor a = Tensor::full({n, n}, 0.5, compute), b = Tensor::full({n, n}, 0.25, compute),
         c = Tensor::empty({n, n}, compute);
  double best = 0;
  for (int rep = 0; rep < 8; rep++) {  // the first warms the threads and caches up; best of 7
    auto t0 = std::chrono::steady_clock::now();
    matmul(a, false, b, false, c, 1.f, 0.f, nullptr);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * double(n * n * n) / s);
  }
  return best;
}

}  // namespace

double peak_flops(Device device, DType compute) {
  if (device.is_cuda()) return gpu_peak(device.index, compute);
  static std::mutex mu;
  static std::map<DType, double> measured;
  std::lock_guard lock(mu);
  auto it = measured.find(compute);
  if (it == measured.end()) it = measured.emplace(compute, measured_cpu_peak(compute)).first;
  return it->second;
}

}  // namespace spectra::kernels
