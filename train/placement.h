// Where a command computes and in what precision: the one rule behind the recipe's train.device
// and train.precision and every command's --device and --precision, so all of them accept the
// same words and fail with the same message.
//
//   device     auto    the process's GPU when a usable one is present, else the CPU
//              cuda    the process's GPU: one per process, the local rank's (mpirun, srun)
//              cuda:N  GPU N
//              cpu
//   precision  auto    bf16 on a GPU, f32 on the CPU
//              f32 | bf16 | fp16 (the 16-bit ones need a GPU: the CPU computes in f32)
#pragma once
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "train/recipe.h"

namespace spectra {

struct Placement {
  Device device;
  DType compute_dtype = DType::f32;
};

// Whether a word is one of the devices above, and the message when it is not (the recipe
// validator checks train.device with them).
bool is_device_word(const std::string& device);
std::string not_a_device_word(const std::string& device);

// `where` names the setting in messages ("--device", "recipe.yaml:12: train.device").
// A UserError when the word is not one of the above, when it asks for a GPU and none is usable,
// or when a 16-bit precision would run on the CPU.
Device resolve_device(const std::string& device, const std::string& where);
DType resolve_precision(const std::string& precision, Device device, const std::string& where);

// train.device and train.precision.
Placement resolve_placement(const Recipe& r);

}  // namespace spectra
