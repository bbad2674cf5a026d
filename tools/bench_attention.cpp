// spectra bench --attention: causal attention alone (kernels/attention.h), forward and backward
// timed separately, for each implementation named (kernels/attention_impl.h: reference, flash,
// cudnn), at one B, H, Dh and one or more sequence lengths T. bf16 on a GPU; on a machine with no
// GPU the CPU reference in f32 at a small default size (the CPU has no other implementation).
//
// FLOPs (the convention of FlashAttention's benchmarks, stated in the output): the forward pass
// is two T×T×Dh matrix products per head (q·kᵀ and p·v), 2 FLOPs per multiply-add, half of them
// masked away by causality: 4·B·H·T²·Dh / 2. The backward pass counts 2.5 times that (five
// products against the forward's two). TFLOP/s = those FLOPs over the measured time.
//
// Timing: a warm-up of --warmup calls (cuDNN builds its plan, kernels load), then three rounds of
// --steps calls issued back to back with the stream synchronized after each round; the time per
// call is the median round's mean. An implementation that throws (not in this build, shape not
// supported, library not loadable) prints its one-line error and the others go on.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>

#include "core/cuda_runtime.h"
#include "core/progress.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "tools/bench.h"
#include "train/placement.h"

namespace spectra::tools {

namespace {

constexpr const char* kFlopsConvention =
    "FLOPs: forward 4*B*H*T^2*Dh/2 (causal: half of q*k^T and p*v), backward 2.5x forward";

struct Result {
  double forward_s = 0, backward_s = 0;
  double o_rel_diff = -1;  // ||o - o_reference|| / ||o_reference||; < 0: not compared
};

void sync(Device d) {
  if (d.is_cuda()) cuda::synchronize();
}

// Uniform values in [-1, 1): never zeros, which would hide unwritten outputs and run faster.
Tensor random_tensor(const Shape& shape, DType dtype, Device device, Rng& rng) {
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = float(2 * rng.uniform() - 1);
  Tensor t = Tensor::from(v, shape);
  if (dtype != DType::f32) t = t.to(dtype);
  return t.to(device);
}

// Seconds per call of f: the median over three rounds of `steps` back-to-back calls.
template <typename F>
double time_calls(Device d, int64_t steps, int64_t warmup, F&& f) {
  for (int64_t i = 0; i < warmup; i++) f();
  sync(d);
  double rounds[3];
  for (double& r : rounds) {
    Stopwatch w;
    for (int64_t i = 0; i < steps; i++) f();
    sync(d);
    r = w.seconds() / double(steps);
  }
  std::sort(rounds, rounds + 3);
  return rounds[1];
}

// TFLOP/s with the digits that matter: a GPU's hundreds, a CPU's hundredths.
std::string tflops_str(double tf) {
  return tf >= 10 ? fmt::format("{:.1f}", tf) : fmt::format("{:.3f}", tf);
}

double rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_doubles(), y = b.to_doubles();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); i++) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace

void add_bench_attention_options(CLI::App* cmd, AttentionBenchArgs& a) {
  cmd->add_flag("--attention", a.enabled,
                "Measure causal attention alone instead: forward and backward per "
                "implementation (--impl, --batch, --seq, --heads, --head-dim; --steps, --warmup). "
                "bf16 on a GPU; without one, the CPU reference in f32 at a small size. " +
                    std::string(kFlopsConvention));
  CLI::Option_group* g = cmd->add_option_group("attention", "Options of --attention");
  g->add_option("--impl", a.impls,
                std::string("--attention: implementations, comma-separated (") +
                    kernels::kAttentionImplChoices + ")")
      ->delimiter(',')
      ->capture_default_str();
  g->add_option("--batch", a.batch, "--attention: B (default 4; 1 on the CPU)")
      ->check(CLI::PositiveNumber);
  g->add_option("--seq", a.seq_lens,
                "--attention: sequence lengths T, comma-separated (default 2048; 256 on the CPU)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  g->add_option("--heads", a.heads, "--attention: H (default 16; 4 on the CPU)")
      ->check(CLI::PositiveNumber);
  g->add_option("--head-dim", a.head_dim, "--attention: Dh (default 128; 64 on the CPU)")
      ->check(CLI::PositiveNumber);
  g->add_option("--device", a.device, "--attention: auto (a GPU when one is usable), cpu, cuda:N")
      ->capture_default_str();
}

void bench_attention(const AttentionBenchArgs& args, int64_t steps, int64_t warmup, bool json) {
  std::vector<kernels::AttentionImpl> impls;
  for (const std::string& s : args.impls) {
    const auto impl = kernels::parse_attention_impl(s);
    if (!impl) user_error("--impl: '{}' is not one of {}", s, kernels::kAttentionImplChoices);
    if (std::find(impls.begin(), impls.end(), *impl) == impls.end()) impls.push_back(*impl);
  }
  if (impls.empty()) user_error("--impl: no implementation named");
  const Device device = resolve_device(args.device, "--device");
  if (device.is_cuda()) cuda::set_device(device.index);
  const bool gpu = device.is_cuda();
  const DType dtype = gpu ? DType::bf16 : DType::f32;
  const int64_t b = args.batch ? args.batch : (gpu ? 4 : 1);
  const int64_t h = args.heads ? args.heads : (gpu ? 16 : 4);
  const int64_t dh = args.head_dim ? args.head_dim : (gpu ? 128 : 64);
  std::vector<int64_t> seq_lens = args.seq_lens;
  if (seq_lens.empty()) seq_lens = {gpu ? int64_t(2048) : int64_t(256)};
  const std::string where = gpu ? cuda::device_name(device.index) : std::string("cpu");
  fmt::print("causal attention on {} ({}), {}, {} timed calls x 3 rounds after {} warm-up\n", where,
             device.str(), dtype_name(dtype), steps, warmup);
  fmt::print("{}; TFLOP/s = FLOPs / median time per call\n", kFlopsConvention);
  fmt::print("{:<10} {:>4} {:>6} {:>4} {:>4} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}\n", "impl", "B",
             "T", "H", "Dh", "fwd ms", "fwd TF/s", "bwd ms", "bwd TF/s", "fwd+bwd ms", "o vs ref");
  std::fflush(stdout);

  const float scale = 1.0f / std::sqrt(float(dh));
  int ran = 0, failed = 0;
  for (const int64_t t : seq_lens) {
    Rng rng{uint64_t(t) * 1000003u + 7, 0};
    const Shape qs{b, t, h, dh};
    const Tensor q = random_tensor(qs, dtype, device, rng);
    const Tensor k = random_tensor(qs, dtype, device, rng);
    const Tensor v = random_tensor(qs, dtype, device, rng);
    const Tensor dout = random_tensor(qs, dtype, device, rng);
    const double fwd_flops = 4.0 * double(b) * double(h) * double(t) * double(t) * double(dh) / 2;
    const double bwd_flops = 2.5 * fwd_flops;
    Tensor o_reference;
    for (const kernels::AttentionImpl impl : impls) {
      const char* name = kernels::attention_impl_name(impl);
      nlohmann::json j{{"mode", "attention"},
                       {"impl", name},
                       {"device", device.str()},
                       {"device_name", where},
                       {"dtype", dtype_name(dtype)},
                       {"batch", b},
                       {"seq_len", t},
                       {"heads", h},
                       {"head_dim", dh},
                       {"causal", true},
                       {"steps", steps},
                       {"flops_convention", kFlopsConvention}};
      try {
        // The CPU ignores the choice (kernels/attention.h): only its reference is a CPU figure.
        if (!gpu && impl != kernels::AttentionImpl::reference)
          user_error("model.attention: {} is a CUDA implementation and no GPU is in use", name);
        Tensor o = Tensor::empty(qs, dtype, device);
        Tensor lse = Tensor::empty({b, h, t}, DType::f32, device);
        Result r;
        r.forward_s = time_calls(device, steps, warmup,
                                 [&] { kernels::attention_forward(q, k, v, scale, o, lse, impl); });
        if (impl == kernels::AttentionImpl::reference)
          o_reference = o;
        else if (o_reference.defined())
          r.o_rel_diff = rel_diff(o, o_reference);
        Tensor dq = Tensor::zeros(qs, dtype, device), dk = Tensor::zeros(qs, dtype, device),
               dv = Tensor::zeros(qs, dtype, device);
        r.backward_s = time_calls(device, steps, warmup, [&] {
          kernels::attention_backward(dout, q, k, v, o, lse, scale, dq, dk, dv, impl);
        });
        const double ftf = fwd_flops / r.forward_s / 1e12, btf = bwd_flops / r.backward_s / 1e12;
        fmt::print(
            "{:<10} {:>4} {:>6} {:>4} {:>4} {:>9.3f} {:>9} {:>9.3f} {:>9} {:>10.3f} {:>10}\n", name,
            b, t, h, dh, 1e3 * r.forward_s, tflops_str(ftf), 1e3 * r.backward_s, tflops_str(btf),
            1e3 * (r.forward_s + r.backward_s),
            r.o_rel_diff >= 0 ? fmt::format("{:.1e}", r.o_rel_diff) : std::string("-"));
        j.update({{"forward_ms", 1e3 * r.forward_s},
                  {"backward_ms", 1e3 * r.backward_s},
                  {"forward_tflops", ftf},
                  {"backward_tflops", btf}});
        if (r.o_rel_diff >= 0) j["o_rel_diff_vs_reference"] = r.o_rel_diff;
        ran++;
      } catch (const std::exception& e) {
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        fmt::print("{:<10} {:>4} {:>6} {:>4} {:>4} error: {}\n", name, b, t, h, dh, msg);
        j["error"] = msg;
        failed++;
      }
      if (json) fmt::print("json: {}\n", j.dump());
      std::fflush(stdout);
    }
  }
  if (ran == 0)
    user_error("bench --attention: none of the {} runs completed (each one's error is above)",
               failed);
}

}  // namespace spectra::tools
