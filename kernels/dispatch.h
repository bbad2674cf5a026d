// The backend rule every op follows, for kernels/dispatch.cpp and for other folders' ops declared
// the same way (quant/gptq_block.h): the inputs' device picks the CPU reference or the CUDA path.
//
//   void my_op(const Tensor& x, Tensor& y) {
//     const bool gpu = kernels::on_cuda("my_op", {&x, &y});
//     ...argument checks...
//     SPECTRA_BACKEND(gpu, my_op, x, y);  // returns cuda::my_op(x, y) or cpu::my_op(x, y)
//   }
#pragma once
#include <initializer_list>
#include <span>

#include "core/tensor.h"

namespace spectra::kernels {

// True when the op's defined tensors are on a CUDA device, false when they are on the CPU (or
// none is defined; null pointers and undefined tensors are skipped). Throws an Error naming the
// op when two of them are on different devices, and a UserError when they are on CUDA in a build
// without CUDA.
bool on_cuda(const char* op, std::span<const Tensor* const> tensors);
inline bool on_cuda(const char* op, std::initializer_list<const Tensor*> tensors) {
  return on_cuda(op, std::span<const Tensor* const>(tensors.begin(), tensors.size()));
}

}  // namespace spectra::kernels

// Returns cuda::op(args...) when `gpu`, else cpu::op(args...), resolved in the caller's
// namespace. Without CUDA, on_cuda() never returns true and no cuda:: symbol is referenced.
#ifdef SPECTRA_WITH_CUDA
#define SPECTRA_BACKEND(gpu, op, ...) return (gpu) ? cuda::op(__VA_ARGS__) : cpu::op(__VA_ARGS__)
#else
#define SPECTRA_BACKEND(gpu, op, ...) return (void)(gpu), cpu::op(__VA_ARGS__)
#endif
