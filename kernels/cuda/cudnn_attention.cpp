// model.attention: cudnn. Causal attention through cuDNN's fused SDPA (flash-attention style
// kernels), described with the cudnn-frontend C++ graph API (header-only, fetched by
// scripts/setup; CMake defines SPECTRA_WITH_CUDNN=1 where it found the headers).
//
// Layout: spectra's q, k, v, o are [B, T, H, Dh]; cuDNN is told dims [B, H, T, Dh] with strides
// [T·H·Dh, Dh, H·Dh, 1], so no transpose is needed. lse is cuDNN's softmax "Stats" output, f32
// [B, H, T, 1] in natural log: the same bytes as spectra's lse [B, H, T], so a cudnn forward
// pairs with any implementation's backward and the other way round.
// Causal mask: the frontend's diagonal band with right bound 0, aligned top-left when Tq == Tk
// and bottom-right when Tq < Tk (query t sits at key position Tk - Tq + t).
// The softmax scale is a pass-by-value scalar, so it is not part of the graph key.
//
// Graphs are built once per CudnnGraphKey (kernels/cuda/cudnn_graph_key.h) and cached. The
// workspace comes from spectra's caching allocator, the handle is per device and bound to
// spectra's stream at every call.
//
// cuDNN's backward overwrites dQ, dK, dV (it has no accumulate mode), so they are written into
// scratch tensors and added into the caller's gradients (kernels::cuda::axpy), as the op's
// contract requires.
//
// Run-time loading: libcudnn is not linked. The frontend is compiled with
// NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING and calls cuDNN through dlsym on the handle this file
// dlopens at first use: $SPECTRA_CUDNN_PATH (a file, or a folder holding libcudnn.so.9), then
// libcudnn.so.9 on the loader's path, then the CUDA toolkit's /usr/local/cuda/lib64. The binary
// therefore starts, and every other attention implementation works, without cuDNN.
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cuda/attention_impls.h"
#include "kernels/cuda/cudnn_graph_key.h"

#ifndef SPECTRA_WITH_CUDNN
#define SPECTRA_WITH_CUDNN 0
#endif

#if SPECTRA_WITH_CUDNN

#include <cuda_runtime.h>
#include <cudnn_frontend.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/elementwise.h"

// The frontend's dynamic-loading shim resolves every cuDNN call with dlsym on this handle.
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace spectra::kernels::cuda {

namespace {

namespace fe = cudnn_frontend;
using TensorAttr = std::shared_ptr<fe::graph::Tensor_attributes>;

constexpr const char* kRemedy =
    "use model.attention: reference or flash, or put libcudnn.so.9 on LD_LIBRARY_PATH";

// Where the loaded cuDNN came from ("" before loading), and why loading failed.
struct Library {
  std::mutex mu;
  bool tried = false;
  std::string error;  // set when loading failed: rethrown at every later use
  std::string path;
  size_t version = 0;
};
Library& library() {
  static Library* l = new Library();  // leaked: cached plans may outlive static destructors
  return *l;
}

std::string version_str(size_t v) {
  return fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string loaded_path(void* handle, const std::string& fallback) {
  link_map* lm = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0])
    return lm->l_name;
  return fallback;
}

// The frontend dlopens a CUDA runtime of its own (libcudart.so.12 or .13, whichever it finds,
// the first with a warning if both are on the path). Point it at the one spectra is linked
// against, so both use the same runtime, unless the user chose one.
void pin_frontend_cudart() {
  if (std::getenv("CUDNN_FRONTEND_CUDART_LIB_NAME")) return;
  void* sym = dlsym(RTLD_DEFAULT, "cudaRuntimeGetVersion");  // from the linked libcudart.so.N
  Dl_info info{};
  if (sym && dladdr(sym, &info) && info.dli_fname &&
      std::string(info.dli_fname).find("/libcudart.so") != std::string::npos)
    setenv("CUDNN_FRONTEND_CUDART_LIB_NAME", info.dli_fname, 0);
}

// dlopens libcudnn.so.9 once and sets the frontend's handle; throws the same UserError at every
// call if it could not.
void load_cudnn() {
  Library& l = library();
  std::lock_guard<std::mutex> lock(l.mu);
  if (!l.tried) {
    l.tried = true;
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("SPECTRA_CUDNN_PATH"); env && env[0]) {
      std::string p = env;
      candidates.push_back(is_dir(p) ? p + "/libcudnn.so.9" : p);
    }
    candidates.push_back("libcudnn.so.9");  // LD_LIBRARY_PATH, the ld.so cache, system folders
    candidates.push_back("/usr/local/cuda/lib64/libcudnn.so.9");
    std::string tried, last_error;
    void* handle = nullptr;
    for (const std::string& c : candidates) {
      tried += (tried.empty() ? "" : ", ") + c;
      handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) {
        l.path = loaded_path(handle, c);
        break;
      }
      if (const char* e = dlerror()) last_error = e;
    }
    if (!handle) {
      l.error = fmt::format(
          "model.attention: cudnn could not load cuDNN (looked for {}; SPECTRA_CUDNN_PATH may name "
          "the file or its folder; last error: {}): {}",
          tried, last_error, kRemedy);
    } else {
      using GetVersion = size_t (*)();
      auto get_version = reinterpret_cast<GetVersion>(dlsym(handle, "cudnnGetVersion"));
      l.version = get_version ? get_version() : 0;
      if (l.version < 90000) {
        l.error = fmt::format(
            "model.attention: cudnn needs cuDNN 9; {} is version {} (looked for libcudnn.so.9 "
            "via SPECTRA_CUDNN_PATH, the loader path and /usr/local/cuda/lib64): {}",
            l.path, version_str(l.version), kRemedy);
        dlclose(handle);
      } else {
        fe::cudnn_dlhandle = handle;
        pin_frontend_cudart();
        log::info("cudnn attention: cuDNN {} from {} (cudnn-frontend {}.{}.{})",
                  version_str(l.version), l.path, CUDNN_FRONTEND_MAJOR_VERSION,
                  CUDNN_FRONTEND_MINOR_VERSION, CUDNN_FRONTEND_PATCH_VERSION);
      }
    }
  }
  if (!l.error.empty()) throw UserError(l.error);
}

// One handle per device, created on first use (with that device current).
cudnnHandle_t handle_for(int device) {
  load_cudnn();
  static std::mutex mu;
  static auto* handles = new std::unordered_map<int, cudnnHandle_t>();  // leaked, like plans
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles->find(device);
  if (it != handles->end()) return it->second;
  cudnnHandle_t h = nullptr;
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  std::string why;
  try {
    st = fe::detail::create_handle(&h);
    if (st != CUDNN_STATUS_SUCCESS) why = fe::detail::get_error_string(st);
  } catch (const std::exception& e) {  // a symbol missing from an unusual libcudnn
    why = e.what();
    st = CUDNN_STATUS_NOT_INITIALIZED;
  }
  if (st != CUDNN_STATUS_SUCCESS)
    throw UserError(fmt::format(
        "model.attention: cudnn: cudnnCreate failed on cuda:{} with {} ({}; is a GPU present and "
        "does the driver suit cuDNN {}?): {}",
        device, why, library().path, version_str(library().version), kRemedy));
  handles->emplace(device, h);
  return h;
}

// A built graph and the tensors its variant pack names.
struct SdpaGraph {
  std::shared_ptr<fe::graph::Graph> graph;
  TensorAttr q, k, v, o, stats, scale, dout, dq, dk, dv;
  int64_t workspace = 0;
};

std::atomic<size_t> g_graphs_built{0};

fe::DataType_t fe_dtype(DType t) {
  return t == DType::bf16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF;
}

// [B, T, H, Dh] storage described as dims [B, H, T, Dh].
TensorAttr bthd(fe::graph::Graph& g, const char* name, int64_t b, int64_t h, int64_t t, int64_t d) {
  return g.tensor(fe::graph::Tensor_attributes()
                      .set_name(name)
                      .set_dim({b, h, t, d})
                      .set_stride({t * h * d, d, h * d, 1}));
}
void as_bthd_output(const TensorAttr& x, int64_t b, int64_t h, int64_t t, int64_t d) {
  x->set_output(true).set_dim({b, h, t, d}).set_stride({t * h * d, d, h * d, 1});
}

template <typename Attrs>
void set_causal(Attrs& a, const CudnnGraphKey& k) {
  if (!k.causal) return;
  a.set_diagonal_alignment(k.tq == k.tk ? fe::DiagonalAlignment_t::TOP_LEFT
                                        : fe::DiagonalAlignment_t::BOTTOM_RIGHT);
  a.set_diagonal_band_right_bound(0);
}

std::string key_str(const CudnnGraphKey& k) {
  return fmt::format("{} {} B={} H={} Tq={} Tk={} Dh={}{}", k.backward ? "backward" : "forward",
                     dtype_name(k.dtype), k.b, k.h, k.tq, k.tk, k.dh, k.causal ? " causal" : "");
}

void check_fe(fe::error_t err, const char* step, const CudnnGraphKey& key) {
  if (err.is_good()) return;
  const std::string msg = fmt::format(
      "model.attention: cudnn: cuDNN {} cannot run SDPA {} ({} failed: {}); use "
      "model.attention: reference or flash",
      version_str(library().version), key_str(key), step, err.get_message());
  // Support checks are about the shape or the cuDNN version (the user's choice); the rest is ours.
  if (err.get_code() == fe::error_code_t::GRAPH_NOT_SUPPORTED ||
      err.get_code() == fe::error_code_t::GRAPH_EXECUTION_PLAN_CREATION_FAILED ||
      err.get_code() == fe::error_code_t::HEURISTIC_QUERY_FAILED)
    throw UserError(msg);
  throw Error(msg);
}

std::unique_ptr<SdpaGraph> build_graph(const CudnnGraphKey& key, cudnnHandle_t handle) {
  auto s = std::make_unique<SdpaGraph>();
  s->graph = std::make_shared<fe::graph::Graph>();
  fe::graph::Graph& g = *s->graph;
  g.set_io_data_type(fe_dtype(key.dtype))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const int64_t b = key.b, h = key.h, tq = key.tq, tk = key.tk, d = key.dh;
  s->q = bthd(g, "Q", b, h, tq, d);
  s->k = bthd(g, "K", b, h, tk, d);
  s->v = bthd(g, "V", b, h, tk, d);
  s->scale = g.tensor(fe::graph::Tensor_attributes()
                          .set_name("attn_scale")
                          .set_dim({1, 1, 1, 1})
                          .set_stride({1, 1, 1, 1})
                          .set_is_pass_by_value(true)
                          .set_data_type(fe::DataType_t::FLOAT));
  if (!key.backward) {
    auto attrs = fe::graph::SDPA_attributes()
                     .set_name("spectra_sdpa")
                     .set_generate_stats(true)
                     .set_attn_scale(s->scale);
    set_causal(attrs, key);
    auto [o, stats] = g.sdpa(s->q, s->k, s->v, attrs);
    as_bthd_output(o, b, h, tq, d);
    stats->set_output(true)
        .set_data_type(fe::DataType_t::FLOAT)
        .set_dim({b, h, tq, 1})
        .set_stride({h * tq, tq, 1, 1});
    s->o = o;
    s->stats = stats;
  } else {
    s->o = bthd(g, "O", b, h, tq, d);
    s->dout = bthd(g, "dO", b, h, tq, d);
    s->stats = g.tensor(fe::graph::Tensor_attributes()
                            .set_name("Stats")
                            .set_dim({b, h, tq, 1})
                            .set_stride({h * tq, tq, 1, 1})
                            .set_data_type(fe::DataType_t::FLOAT));
    auto attrs = fe::graph::SDPA_backward_attributes()
                     .set_name("spectra_sdpa_backward")
                     .set_attn_scale(s->scale);
    set_causal(attrs, key);
    auto [dq, dk, dv] = g.sdpa_backward(s->q, s->k, s->v, s->o, s->dout, s->stats, attrs);
    as_bthd_output(dq, b, h, tq, d);
    as_bthd_output(dk, b, h, tk, d);
    as_bthd_output(dv, b, h, tk, d);
    s->dq = dq;
    s->dk = dk;
    s->dv = dv;
  }
  check_fe(g.validate(), "validate", key);
  check_fe(g.build_operation_graph(handle), "build_operation_graph", key);
  check_fe(g.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
           "create_execution_plans", key);
  check_fe(g.check_support(), "check_support", key);
  check_fe(g.build_plans(), "build_plans", key);
  check_fe(g.get_workspace_size(s->workspace), "get_workspace_size", key);
  g_graphs_built++;
  return s;
}

// The cached graph of `key`, built on first use. Graphs are never freed (a run uses a handful).
const SdpaGraph& graph_for(const CudnnGraphKey& key, cudnnHandle_t handle) {
  static std::mutex mu;
  static auto* cache =
      new std::unordered_map<CudnnGraphKey, std::unique_ptr<SdpaGraph>, CudnnGraphKeyHash>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(key, build_graph(key, handle)).first;
  return *it->second;
}

void check_dtype(const char* op, const Tensor& q) {
  if (q.dtype() != DType::bf16 && q.dtype() != DType::f16)
    throw UserError(fmt::format(
        "{}: model.attention: cudnn needs bf16 or f16 activations (train.precision bf16 or "
        "fp16), got {}; use model.attention: reference for f32",
        op, dtype_name(q.dtype())));
}

// Runs a graph on spectra's stream with a workspace from the caching allocator. The frontend
// reports failures through error_t or, from its dynamic-loading shim, by throwing.
void execute(const SdpaGraph& s, cudnnHandle_t handle, const CudnnGraphKey& key,
             std::unordered_map<TensorAttr, void*>& pack) {
  auto stream = static_cast<cudaStream_t>(::spectra::cuda::stream());
  cudnnStatus_t st = fe::detail::set_stream(handle, stream);
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(fmt::format("cudnnSetStream failed: {}, rank {}", fe::detail::get_error_string(st),
                            error_rank()));
  Tensor ws;
  if (s.workspace > 0) ws = Tensor::empty({s.workspace}, DType::u8, Device::cuda(key.device));
  fe::error_t err = s.graph->execute(handle, pack, s.workspace > 0 ? ws.raw() : nullptr);
  if (err.is_bad())
    throw Error(fmt::format("cuDNN SDPA {} failed to execute: {}, rank {}", key_str(key),
                            err.get_message(), error_rank()));
}

// The frontend throws std::runtime_error from its loader shim (a missing symbol or libcudart);
// spectra reports those as its own errors.
template <typename Fn>
void guarded(const char* op, Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("{} (model.attention: cudnn): cudnn-frontend: {}, rank {}", op,
                            e.what(), error_rank()));
  }
}

}  // namespace

bool cudnn_attention_built() { return true; }
size_t cudnn_attention_graphs() { return g_graphs_built.load(); }

size_t cudnn_runtime_version() {
  load_cudnn();
  int device = 0;  // without a driver cudaGetDevice fails: then cudnnCreate says so, below
  if (cudaGetDevice(&device) != cudaSuccess) cudaGetLastError();
  handle_for(device);
  return library().version;
}

void cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                             Tensor& o, Tensor& lse) {
  const char* op = "attention_forward";
  check_dtype(op, q);
  if (q.numel() == 0) return;
  guarded(op, [&] {
    const CudnnGraphKey key{q.dtype(), q.size(0), q.size(2), q.size(1),       k.size(1),
                            q.size(3), true,      false,     q.device().index};
    cudnnHandle_t handle = handle_for(key.device);
    const SdpaGraph& s = graph_for(key, handle);
    float scale_value = scale;
    std::unordered_map<TensorAttr, void*> pack{{s.q, q.raw()}, {s.k, k.raw()},
                                               {s.v, v.raw()}, {s.scale, &scale_value},
                                               {s.o, o.raw()}, {s.stats, lse.raw()}};
    execute(s, handle, key, pack);
  });
}

void cudnn_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, float scale, Tensor& dq,
                              Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  check_dtype(op, q);
  if (q.numel() == 0) return;
  guarded(op, [&] {
    const CudnnGraphKey key{q.dtype(), q.size(0), q.size(2), q.size(1),       k.size(1),
                            q.size(3), true,      true,      q.device().index};
    cudnnHandle_t handle = handle_for(key.device);
    const SdpaGraph& s = graph_for(key, handle);
    // cuDNN overwrites its gradients: compute them apart, then accumulate (+=) into the caller's.
    const Device dev = Device::cuda(key.device);
    Tensor gq = Tensor::empty(q.shape(), q.dtype(), dev);
    Tensor gk = Tensor::empty(k.shape(), k.dtype(), dev);
    Tensor gv = Tensor::empty(v.shape(), v.dtype(), dev);
    float scale_value = scale;
    std::unordered_map<TensorAttr, void*> pack{
        {s.q, q.raw()},       {s.k, k.raw()},       {s.v, v.raw()},          {s.o, o.raw()},
        {s.dout, dout.raw()}, {s.stats, lse.raw()}, {s.scale, &scale_value}, {s.dq, gq.raw()},
        {s.dk, gk.raw()},     {s.dv, gv.raw()}};
    execute(s, handle, key, pack);
    axpy(1.f, gq, dq);
    axpy(1.f, gk, dk);
    axpy(1.f, gv, dv);
  });
}

}  // namespace spectra::kernels::cuda

#else  // !SPECTRA_WITH_CUDNN: configured without the cudnn-frontend headers

namespace spectra::kernels::cuda {

namespace {
[[noreturn]] void no_frontend() {
  throw UserError(
      "model.attention: cudnn: this build has no cuDNN frontend (run scripts/setup, which fetches "
      "the cudnn-frontend headers, and rebuild); use model.attention: reference or flash");
}
}  // namespace

bool cudnn_attention_built() { return false; }
size_t cudnn_attention_graphs() { return 0; }
size_t cudnn_runtime_version() { no_frontend(); }
void cudnn_attention_forward(const Tensor&, const Tensor&, const Tensor&, float, Tensor&, Tensor&) {
  no_frontend();
}
void cudnn_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, float, Tensor&, Tensor&, Tensor&) {
  no_frontend();
}

}  // namespace spectra::kernels::cuda

#endif
