// matmul through cuBLASLt. spectra's tensors are row-major and cuBLASLt's column-major, so
// c = op(a)·op(b) is computed as cᵀ = op(b)ᵀ·op(a)ᵀ: a row-major X is the column-major Xᵀ.
// f32 accumulation (CUBLAS_COMPUTE_32F, never TF32: f32 must match the CPU). With `scale`
// (the ternary γ, a device scalar) alpha and beta are read from device memory, so no host sync.
// Algorithm choices are cached per problem.
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"

namespace spectra::kernels::cuda {

namespace {

constexpr size_t kWorkspace = 32u << 20;

struct Lt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::mutex mu;
  std::map<std::tuple<int64_t, int64_t, int64_t, int, int, int, int, int, bool>,
           cublasLtMatmulAlgo_t>
      algos;
};
Lt& lt() {
  static Lt* l = [] {
    auto* x = new Lt();
    CUBLAS_CHECK(cublasLtCreate(&x->handle));
    x->workspace = spectra::cuda::alloc(kWorkspace, spectra::cuda::current_device());
    return x;
  }();
  return *l;
}

cudaDataType_t cuda_type(const char* op, DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      throw Error(fmt::format("{}: dtype {} unsupported", op, dtype_name(t)));
  }
}

// RAII for the descriptor objects of one call.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descs() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

__global__ void scaled_alpha_beta(const float* scale, float alpha, float beta, float* out) {
  out[0] = alpha * scale[0];
  out[1] = beta;
}

}  // namespace

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, float alpha, float beta,
            const Tensor* scale) {
  const int64_t ar = rows_of(a), ac = a.size(-1), br = rows_of(b), bc = b.size(-1);
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // cuBLASLt rejects k = 0; the product is empty: c = beta·c
    if (beta == 0.f)
      c.zero_();
    else if (beta != 1.f)
      throw Error("matmul: k = 0 with beta other than 0 or 1");
    return;
  }
  const cudaDataType_t tab = cuda_type("matmul", a.dtype()), tc = cuda_type("matmul", c.dtype());
  Lt& l = lt();
  Descs d;
  // First operand: b (column-major view bᵀ), second: a.
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                          opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa));
  // Column-major layouts: b is stored as [bc rows, br cols] (ld bc); a as [ac, ar] (ld ac).
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, tab, uint64_t(bc), uint64_t(br), bc));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, tab, uint64_t(ac), uint64_t(ar), ac));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, tc, uint64_t(n), uint64_t(m), n));

  Tensor ab;  // device alpha/beta when scaled
  const void *alpha_p = &alpha, *beta_p = &beta;
  if (scale) {
    ab = scratch({2});
    scaled_alpha_beta<<<1, 1, 0, stream()>>>(scale->data<float>(), alpha, beta, ab.data<float>());
    CUDA_CHECK_LAUNCH("matmul");
    cublasLtPointerMode_t mode = CUBLASLT_POINTER_MODE_DEVICE;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode,
                                                sizeof mode));
    alpha_p = ab.data<float>();
    beta_p = ab.data<float>() + 1;
  }

  auto key =
      std::make_tuple(m, n, k, int(ta), int(tb), int(tab), int(tc), scale ? 1 : 0, beta != 0.f);
  cublasLtMatmulAlgo_t algo;
  {
    std::lock_guard<std::mutex> lock(l.mu);
    auto it = l.algos.find(key);
    if (it == l.algos.end()) {
      cublasLtMatmulPreference_t pref;
      CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      size_t ws = kWorkspace;
      CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
      cublasLtMatmulHeuristicResult_t res;
      int found = 0;
      cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(l.handle, d.op, d.a, d.b, d.c, d.c, pref, 1, &res, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        throw Error(
            fmt::format("matmul: cuBLASLt has no algorithm for [{}, {}] x [{}, {}] in {} -> {}", m,
                        k, k, n, dtype_name(a.dtype()), dtype_name(c.dtype())));
      it = l.algos.emplace(key, res.algo).first;
    }
    algo = it->second;
  }
  CUBLAS_CHECK(cublasLtMatmul(l.handle, d.op, alpha_p, b.raw(), d.a, a.raw(), d.b, beta_p, c.raw(),
                              d.c, c.raw(), d.c, &algo, l.workspace, kWorkspace, stream()));
}

}  // namespace spectra::kernels::cuda
