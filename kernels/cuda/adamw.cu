// AdamW over every parameter in one launch: the host lists fixed-size chunks of all tensors
// (tensor index, first element); each block updates one chunk through the shared adamw_update
// and writes the compute copy in its dtype.
#include <cmath>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/cuda/common.cuh"

namespace spectra::kernels::cuda {

namespace {
constexpr int64_t kChunk = 16384;
constexpr int kThreads = 256;

struct TensorDesc {
  float *p, *m, *v;
  const float* g;
  void* compute;
  int64_t n;
  int compute_dtype;  // -1 none, else DType
  float wd;
};
struct Chunk {
  int tensor;
  int64_t start;
};

__global__ void adamw_kernel(const TensorDesc* ts, const Chunk* chunks, AdamWHyper h, float bc1,
                             float bc2) {
  const Chunk c = chunks[blockIdx.x];
  const TensorDesc t = ts[c.tensor];
  const int64_t end = c.start + kChunk < t.n ? c.start + kChunk : t.n;
  for (int64_t i = c.start + threadIdx.x; i < end; i += blockDim.x) {
    float p = t.p[i], m = t.m[i], v = t.v[i];
    adamw_update(p, t.g[i] * h.grad_scale, m, v, h.lr, h.beta1, h.beta2, h.eps, t.wd, bc1, bc2);
    t.p[i] = p;
    t.m[i] = m;
    t.v[i] = v;
    switch (t.compute_dtype) {
      case int(DType::bf16):
        static_cast<__nv_bfloat16*>(t.compute)[i] = __float2bfloat16(p);
        break;
      case int(DType::f16):
        static_cast<__half*>(t.compute)[i] = __float2half(p);
        break;
      case int(DType::f32):
        static_cast<float*>(t.compute)[i] = p;
        break;
      default:
        break;
    }
  }
}
}  // namespace

void adamw_step(std::vector<AdamWTensor>& tensors, const AdamWHyper& h) {
  std::vector<TensorDesc> descs;
  std::vector<Chunk> chunks;
  for (AdamWTensor& t : tensors) {
    int cd = -1;
    if (t.compute.defined()) {
      dispatch_act("adamw_step", t.compute.dtype(), [](auto) {});  // f32, bf16 or f16 only
      cd = int(t.compute.dtype());
    }
    int idx = int(descs.size());
    descs.push_back({t.param.data<float>(), t.m.data<float>(), t.v.data<float>(),
                     t.grad.data<float>(), t.compute.defined() ? t.compute.raw() : nullptr,
                     t.param.numel(), cd, t.decay ? h.weight_decay : 0.f});
    for (int64_t s = 0; s < t.param.numel(); s += kChunk) chunks.push_back({idx, s});
  }
  if (chunks.empty()) return;
  Device dev = tensors[0].param.device();
  Tensor d_descs = Tensor::empty({int64_t(descs.size() * sizeof(TensorDesc))}, DType::u8, dev);
  Tensor d_chunks = Tensor::empty({int64_t(chunks.size() * sizeof(Chunk))}, DType::u8, dev);
  spectra::cuda::memcpy(d_descs.raw(), dev, descs.data(), Device::cpu(), d_descs.nbytes());
  spectra::cuda::memcpy(d_chunks.raw(), dev, chunks.data(), Device::cpu(), d_chunks.nbytes());
  const float bc1 = 1.f - std::pow(h.beta1, float(h.step)),
              bc2 = 1.f - std::pow(h.beta2, float(h.step));
  adamw_kernel<<<unsigned(chunks.size()), kThreads, 0, stream()>>>(
      static_cast<const TensorDesc*>(d_descs.raw()), static_cast<const Chunk*>(d_chunks.raw()), h,
      bc1, bc2);
  CUDA_CHECK_LAUNCH("adamw_step");
}

}  // namespace spectra::kernels::cuda
