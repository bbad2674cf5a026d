// The peak FLOP/s that MFU (model FLOPs utilization) is measured against: one table for the
// training log and `spectra bench`.
//   GPU: the data sheet's dense peak of the dtype the step computes in: tensor cores for
//        bf16/fp16, CUDA cores for f32 (spectra's f32 GEMMs never use TF32). SXM parts:
//        H100/H200 989 TFLOP/s bf16/fp16, 67 f32; A100 312 and 19.5. A GPU not in the table
//        gives 0: no MFU is shown (bench --peak-tflops states one).
//   CPU: measured, once per process: the best of a few 1024³ GEMMs of the compute dtype on all
//        threads (OpenBLAS), the rate a perfectly efficient step could reach on this machine.
#pragma once
#include "core/device.h"
#include "core/dtype.h"

namespace spectra::kernels {

double peak_flops(Device device, DType compute);

}  // namespace spectra::kernels
