// spectra bench: training-step throughput on synthetic tokens for one or more recipes' models:
// time per step split into forward / backward / optimizer, tokens/s, MFU against the device's
// peak (kernels/peak_flops.h), and peak memory (the GPU's, or the host tensors' on the CPU).
// --generate N: prompt and decode speed, latent and packed TriLM weights (in
// tools/bench_generate.cpp); --checkpoint-io DIR:
// checkpoint snapshot, write and read speed;
// --data-parallel (under mpirun): gradient communication hidden by the backward pass (in
// tools/bench_data_parallel.cpp); --attention: causal attention alone, forward and backward per
// implementation (tools/bench_attention.cpp); --quantize N: GPTQ on N
// calibration sequences (quant/quantlm.h). One row per recipe; --json
// adds machine-readable lines for the comparison scripts in bench/.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "core/cuda_runtime.h"
#include "core/progress.h"
#include "core/rng.h"
#include "dist/topology.h"
#include "dist/world.h"
#include "kernels/peak_flops.h"
#include "quant/quantlm.h"
#include "tools/bench.h"
#include "tools/commands.h"
#include "train/checkpoint.h"
#include "train/recipe.h"
#include "train/training_model.h"

namespace spectra::tools {

namespace {

struct BenchArgs {
  std::vector<std::string> recipes = {"recipes/trilm/99m.yaml", "recipes/floatlm/99m.yaml"};
  std::vector<std::string> overrides;
  int64_t steps = 10, warmup = 2;
  int64_t micro_batch = 0, seq_len = 0;  // 0: the recipe's
  double peak_tflops = 0;                // 0: the recipe's log.peak_tflops, else the device's
  bool json = false;
  std::string checkpoint_dir;    // measure checkpoint write/read instead of training steps
  GenerateBenchArgs generate;    // --generate N and its options
  int64_t quantize = 0;          // > 0: measure GPTQ with this many calibration sequences instead
  int64_t quantize_layers = 2;   // blocks quantized (the rest is extrapolated: blocks are alike)
  bool data_parallel = false;    // under mpirun: gradient reduces blocking vs overlapped
  AttentionBenchArgs attention;  // --attention and its options
};

struct Phases {
  double forward = 0, backward = 0, optimizer = 0;
};

void sync(Device d) {
  if (d.is_cuda()) cuda::synchronize();
}

// Writes and reads back the recipe's full training state (weights and AdamW moments) as a
// checkpoint, timing both (each includes the CRC verification pass over the data), and the
// snapshot alone: what a step pays when the write runs in the background (checkpoint.async).
void bench_checkpoint(const std::string& path, const BenchArgs& a) {
  Recipe r = load_recipe(path, a.overrides);
  r.checkpoint.dir = a.checkpoint_dir;
  r.checkpoint.keep = 1;
  TrainingModel built = build_training_model(r, resolve_placement(r));
  LM& lm = *built.model;
  Optimizer& opt = *built.optimizer;
  Stopwatch w;
  CheckpointSnapshot snap = snapshot_checkpoint(r, lm, opt, {1, "{}"}, 0);
  const double snapshot_s = w.seconds();
  w.reset();
  write_checkpoint(snap);
  const std::string file = snap.path;
  double write_s = w.seconds();
  snap = {};
  double bytes = double(std::filesystem::file_size(file));
  w.reset();
  load_checkpoint(file, r, lm, opt);
  double read_s = w.seconds();
  fmt::print(
      "checkpoint {} of {}: {:.2f} GB, write {:.2f} GB/s ({:.1f} s), read {:.2f} GB/s ({:.1f} s)\n"
      "saving stalls the step {:.2f} s synchronously (snapshot + write), {:.2f} s with "
      "checkpoint.async (the snapshot: a host copy at {:.2f} GB/s)\n",
      file, path, bytes / 1e9, bytes / 1e9 / write_s, write_s, bytes / 1e9 / read_s, read_s,
      snapshot_s + write_s, snapshot_s, bytes / 1e9 / snapshot_s);
  if (a.json)
    fmt::print("json: {}\n", nlohmann::json{{"recipe", path},
                                            {"bytes", bytes},
                                            {"snapshot_s", snapshot_s},
                                            {"write_s", write_s},
                                            {"read_s", read_s},
                                            {"file", file}}
                                 .dump());
}

// GPTQ (4 bits, group 128) of the recipe's FloatLM with random weights, on a.quantize random
// calibration sequences of train.seq_len tokens, for its first a.quantize_layers blocks; the whole
// model's time is extrapolated per block (every block does the same work).
void bench_quantize(const std::string& path, const BenchArgs& a) {
  Recipe r = load_recipe(path, a.overrides);
  Placement p = resolve_placement(r);
  ModelConfig c = r.model;
  c.kind = ModelKind::floatlm;
  const int64_t layers = c.layers;
  c.layers = std::min(layers, a.quantize_layers);
  LM lm(c, LayerOptions{DType::f32, p.device}, DType::f32);
  lm.initialize(r.train.seed);
  const int64_t t = r.train.seq_len;
  Tensor ids = Tensor::empty({a.quantize * t}, DType::i32);
  Rng rng{r.train.seed, 0};
  for (int64_t i = 0; i < ids.numel(); i++)
    ids.data<int32_t>()[i] = int32_t(rng.below(uint64_t(c.vocab_size)));
  quant::QuantSettings s;
  s.options = {quant::Method::gptq, {4, true}, 128};
  s.samples = a.quantize, s.seq_len = t;
  Stopwatch w;
  quant::quantize_model(lm, &ids, s, {r.train.micro_batch, false});
  sync(p.device);
  const double per_block = w.seconds() / double(c.layers);
  fmt::print("{:<28} {:>8} {:>6} {:>5}x{:<5} {:>12.2f} {:>14}\n", path,
             format_count(double(r.model.parameter_count())), p.device.str(), a.quantize, t,
             per_block, format_duration(per_block * double(layers)));
  if (a.json)
    fmt::print("json: {}\n", nlohmann::json{{"recipe", path},
                                            {"device", p.device.str()},
                                            {"samples", a.quantize},
                                            {"seq_len", t},
                                            {"blocks_measured", c.layers},
                                            {"seconds_per_block", per_block},
                                            {"model_seconds", per_block * double(layers)}}
                                 .dump());
  std::fflush(stdout);
}

void bench_one(const std::string& path, const BenchArgs& a) {
  std::vector<std::string> ov = a.overrides;
  if (a.micro_batch) ov.push_back(fmt::format("train.micro_batch={}", a.micro_batch));
  if (a.seq_len) ov.push_back(fmt::format("train.seq_len={}", a.seq_len));
  Recipe r = load_recipe(path, ov);
  Placement p = resolve_placement(r);
  const ModelConfig& m = r.model;
  int64_t b = r.train.micro_batch, t = r.train.seq_len;

  cuda::reset_peak();
  reset_host_peak();
  TrainingModel built = build_training_model(r, p);
  LM& lm = *built.model;
  Optimizer& opt = *built.optimizer;
  std::vector<int32_t> ids(size_t(b * t)), tg(size_t(b * t));
  Rng rng{r.train.seed, 0};
  for (size_t i = 0; i < ids.size(); i++) {
    ids[i] = int32_t(rng.below(uint64_t(m.vocab_size)));
    tg[i] = int32_t(rng.below(uint64_t(m.vocab_size)));
  }
  Tensor x = Tensor::from(ids, {b * t}).to(p.device), y = Tensor::from(tg, {b * t}).to(p.device);

  Phases sum;
  for (int64_t s = 0; s < a.warmup + a.steps; s++) {
    Stopwatch w;
    ag::Var loss = lm.loss(x, y, b, t);
    sync(p.device);
    double f = w.seconds();
    ag::backward(loss, opt.scaler().scale);
    sync(p.device);
    double bw = w.seconds();
    opt.step(1e-4, 0.1);
    sync(p.device);
    double o = w.seconds();
    if (s >= a.warmup) {
      sum.forward += f;
      sum.backward += bw - f;
      sum.optimizer += o - bw;
    }
  }
  double n = double(a.steps);
  double step = (sum.forward + sum.backward + sum.optimizer) / n;
  double tok_s = double(b * t) / step;
  const double tflops = a.peak_tflops > 0 ? a.peak_tflops : r.log.peak_tflops;
  const double peak = tflops > 0 ? tflops * 1e12 : kernels::peak_flops(p.device, p.compute_dtype);
  double mfu = peak > 0 ? tok_s * m.train_flops_per_token(t) / peak : 0;
  double mem = double(p.device.is_cuda() ? cuda::peak_bytes_in_use() : host_peak_bytes_in_use()) /
               1073741824.0;
  fmt::print(
      "{:<28} {:>8} {:>6}x{:<5} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>10} {:>6.1f}% {:>8.2f}\n",
      path, format_count(double(m.parameter_count())), b, t, 1e3 * sum.forward / n,
      1e3 * sum.backward / n, 1e3 * sum.optimizer / n, 1e3 * step, format_count(tok_s), 100 * mfu,
      mem);
  if (a.json)
    fmt::print("json: {}\n", nlohmann::json{{"recipe", path},
                                            {"params", m.parameter_count()},
                                            {"micro_batch", b},
                                            {"seq_len", t},
                                            {"device", p.device.str()},
                                            {"precision", r.train.precision},
                                            {"forward_ms", 1e3 * sum.forward / n},
                                            {"backward_ms", 1e3 * sum.backward / n},
                                            {"optimizer_ms", 1e3 * sum.optimizer / n},
                                            {"step_ms", 1e3 * step},
                                            {"tokens_per_s", tok_s},
                                            {"mfu", mfu},
                                            {"peak_mem_gib", mem}}
                                 .dump());
  std::fflush(stdout);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Measure training-step speed and memory on synthetic tokens");
  cmd->add_option("recipes", a->recipes, "Recipes whose models to measure")->capture_default_str();
  cmd->add_option("--set", a->overrides, "Override a recipe key (all recipes)")
      ->type_name("KEY=VALUE");
  cmd->add_option("--steps", a->steps, "Timed steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed steps first")->capture_default_str();
  cmd->add_option("--micro-batch", a->micro_batch, "Sequences per step (default: the recipe's)");
  cmd->add_option("--seq-len", a->seq_len, "Tokens per sequence (default: the recipe's)");
  cmd->add_option("--peak-tflops", a->peak_tflops,
                  "Device peak for MFU (default: the recipe's log.peak_tflops, else the "
                  "device's from kernels/peak_flops.h; the CPU's is measured)");
  cmd->add_flag("--json", a->json, "Also print one JSON line per recipe");
  cmd->add_option("--checkpoint-io", a->checkpoint_dir,
                  "Measure checkpoint write/read of the full training state into DIR instead")
      ->type_name("DIR");
  add_bench_generate_options(cmd, a->generate);
  cmd->add_option("--quantize", a->quantize,
                  "Measure GPTQ (4-bit) of the recipe's FloatLM (random weights) on N random "
                  "calibration sequences instead")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--quantize-layers", a->quantize_layers,
                  "--quantize: blocks to run (the model's time is extrapolated)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--data-parallel", a->data_parallel,
                "Under mpirun: gradient communication blocking vs overlapped with the backward "
                "pass (parallel.zero, parallel.bucket_mb apply)");
  add_bench_attention_options(cmd, a->attention);
  cmd->callback([a] {
    if (a->attention.enabled) {  // needs no recipe
      bench_attention(a->attention, a->steps, a->warmup, a->json);
      return;
    }
    // Every recipe valid before any measurement; under mpirun every rank finds the same fault
    // and one of them says so.
    std::string error;
    try {
      for (const std::string& r : a->recipes) resolve_placement(load_recipe(r, a->overrides));
    } catch (const UserError& e) {
      if (dist::world_size() == 1) throw;
      error = e.what();
    }
    if (dist::world_size() > 1) dist::fail_together(error);
    if (a->data_parallel) {
      for (const std::string& r : a->recipes) {
        std::vector<std::string> ov = a->overrides;
        if (a->micro_batch) ov.push_back(fmt::format("train.micro_batch={}", a->micro_batch));
        if (a->seq_len) ov.push_back(fmt::format("train.seq_len={}", a->seq_len));
        bench_data_parallel(r, ov, a->steps, a->warmup, a->json);
      }
      return;
    }
    if (a->quantize > 0) {
      fmt::print("{:<28} {:>8} {:>6} {:>11} {:>12} {:>14}\n", "recipe", "params", "device",
                 "calibration", "s per block", "whole model");
      for (const std::string& r : a->recipes) bench_quantize(r, *a);
      return;
    }
    if (a->generate.tokens > 0) {
      if (!a->generate.save_model.empty() && a->recipes.size() != 1)
        user_error("--save-model writes one model: give one recipe");
      print_generate_header();
      for (const std::string& r : a->recipes) bench_generate(r, a->overrides, a->generate, a->json);
      return;
    }
    if (!a->checkpoint_dir.empty()) {
      for (const std::string& r : a->recipes) bench_checkpoint(r, *a);
      return;
    }
    fmt::print("{:<28} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7} {:>8}\n", "recipe",
               "params", "batch", "fwd ms", "bwd ms", "opt ms", "step ms", "tok/s", "MFU",
               "mem GiB");
    for (const std::string& r : a->recipes) bench_one(r, *a);
  });
}

}  // namespace spectra::tools
