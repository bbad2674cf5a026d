// spectra quantize MODEL -o OUT --bits B ...: a QuantLM from a trained FloatLM (quant/quantlm.h):
// GPTQ (or round-to-nearest) on the seven block projections, calibrated on the training data.
// MODEL may also be a QuantLM recipe (recipes/quantlm/*.yaml): its quantize section gives the
// model, output and settings, and flags given on the command line override them.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/progress.h"
#include "quant/calibration.h"
#include "quant/quantlm.h"
#include "tools/commands.h"
#include "train/model_file.h"
#include "train/placement.h"

namespace spectra::tools {

namespace {

struct QuantizeArgs {
  std::string input, out, calibration, report, save_calibration, device = "auto";
  std::vector<std::string> sets;
  Recipe::Quantize q;  // the settings, as a recipe's quantize section holds them
  bool act_order = false, asym = false, sym = false, progress = true;
  int64_t batch = 8;
  CLI::App* cmd = nullptr;
};

bool given(const QuantizeArgs& a, const char* flag) { return a.cmd->count(flag) > 0; }

// The settings: a recipe's section (when MODEL is one) under the flags given.
// `described`: the model a QuantLM recipe describes, which the file must hold.
Recipe::Quantize settings(QuantizeArgs& a, std::string& model,
                          std::optional<ModelConfig>& described) {
  Recipe::Quantize q = a.q;
  const bool recipe = a.input.ends_with(".yaml") || a.input.ends_with(".yml");
  if (!recipe) {
    if (!a.sets.empty()) user_error("--set applies to a QuantLM recipe, not to a model file");
    model = a.input;
  } else {
    Recipe r = load_recipe(a.input, a.sets);
    if (!r.quantize.present)
      user_error("{}: has no quantize section; a QuantLM recipe (recipes/quantlm/) sets one",
                 a.input);
    q = r.quantize;
    described = r.model;
    model = !q.model.empty() ? q.model : r.train.out;
    if (model.empty())
      user_error("{}: names no model to quantize (set quantize.model or train.out)", a.input);
    if (q.calibration.empty() && !r.data.datasets.empty()) q.calibration = r.data.datasets[0];
    if (given(a, "--bits")) q.bits = a.q.bits;
    if (given(a, "--method")) q.method = a.q.method;
    if (given(a, "--group-size")) q.group_size = a.q.group_size;
    if (given(a, "--damp")) q.damp = a.q.damp;
    if (given(a, "--samples")) q.samples = a.q.samples;
    if (given(a, "--seq-len")) q.seq_len = a.q.seq_len;
    if (given(a, "--seed")) q.seed = a.q.seed;
  }
  if (!a.out.empty()) q.out = a.out;
  if (!a.calibration.empty()) q.calibration = a.calibration;
  if (a.act_order) q.order = "activation";
  if (a.asym) q.scheme = "asym";
  if (a.sym) q.scheme = "sym";
  if (q.out.empty()) user_error("give the output model file (-o OUT)");
  if (!Recipe::Quantize::supported_bits(q.bits))
    user_error("--bits {}: QuantLMs have 3, 4, 6 or 8 bits", q.bits);
  return q;
}

void print_summary(const quant::QuantLM& q) {
  // Per kind of projection: the mean layer error over the blocks, and round-to-nearest's.
  std::vector<std::string> kinds;
  std::map<std::string, std::array<double, 3>> sums;  // error, rtn error, blocks
  for (const quant::ProjectionResult& p : q.projections) {
    const std::string stem = p.name.substr(0, p.name.size() - std::string(".weight").size());
    const std::string kind = stem.substr(stem.rfind('.') + 1);  // "down_proj"
    if (!sums.count(kind)) kinds.push_back(kind);
    auto& s = sums[kind];
    s[0] += p.error, s[1] += p.rtn_error, s[2] += 1;
  }
  if (std::isnan(q.projections.front().error)) return;
  fmt::print("{:<10} {:>14} {:>14} {:>8}\n", "projection", "error", "rtn error", "ratio");
  for (const std::string& k : kinds) {
    const auto& s = sums[k];
    fmt::print("{:<10} {:>14.6g} {:>14.6g} {:>8.4f}\n", k, s[0] / s[2], s[1] / s[2], s[0] / s[1]);
  }
  fmt::print("(mean over the blocks of ‖(W − Ŵ)x‖² per calibration token)\n");
}

void write_report(const std::string& path, const std::string& model, const quant::QuantLM& q,
                  const Recipe::Quantize& s, double seconds) {
  nlohmann::ordered_json j = {{"model", model},
                              {"out", s.out},
                              {"method", s.method},
                              {"bits", s.bits},
                              {"group_size", s.group_size},
                              {"scheme", s.scheme},
                              {"order", s.order},
                              {"damp", s.damp},
                              {"calibration", s.calibration},
                              {"samples", s.samples},
                              {"seq_len", s.seq_len},
                              {"seed", s.seed},
                              {"seconds", seconds},
                              {"projections", nlohmann::json::array()}};
  for (const quant::ProjectionResult& p : q.projections) {
    auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
    j["projections"].push_back({{"name", p.name},
                                {"error", num(p.error)},
                                {"rtn_error", num(p.rtn_error)},
                                {"dead_columns", p.q.dead},
                                {"damp", p.q.damp}});
  }
  std::ofstream f(path);
  if (!f) user_error("{}: cannot create (--report)", path);
  f << j.dump(2) << "\n";
}

// The calibration ids as a NumPy .npy file, int32 [samples, seq_len] (format version 1.0).
void write_npy(const std::string& path, const Tensor& ids, int64_t seq_len) {
  std::string header =
      fmt::format("{{'descr': '<i4', 'fortran_order': False, 'shape': ({}, {}), }}",
                  ids.numel() / seq_len, seq_len);
  header.append(63 - (10 + header.size()) % 64, ' ').push_back('\n');  // 64-byte aligned data
  std::ofstream f(path, std::ios::binary);
  if (!f) user_error("{}: cannot create (--save-calibration)", path);
  const uint16_t len = uint16_t(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f << header;
  f.write(reinterpret_cast<const char*>(ids.data<int32_t>()), std::streamsize(ids.numel() * 4));
}

void run(QuantizeArgs& a) {
  Stopwatch clock;
  std::string model_path;
  std::optional<ModelConfig> described;
  Recipe::Quantize s = settings(a, model_path, described);
  const Device d = resolve_device(a.device, "--device");
  LoadedModel m = load_model(model_path, d, DType::f32);  // GPTQ works on f32 weights
  const ModelConfig& c = m.recipe.model;
  if (described)
    check_model_fits(model_path, c, *described, false,
                     fmt::format("quantize the model {} describes", a.input));
  if (c.ternary())
    user_error("{}: a TriLM; its projections are already ternary. GPTQ quantizes FloatLMs",
               model_path);
  if (quant::read_quantlm(model_path))
    user_error("{}: already quantized; quantize the FloatLM it came from", model_path);
  if (s.group_size > 0 && (c.hidden % s.group_size != 0 || c.ffn % s.group_size != 0))
    user_error(
        "--group-size {} does not divide the projections' input widths (hidden {}, ffn {}); "
        "use a common divisor such as {}",
        s.group_size, c.hidden, c.ffn, std::gcd(c.hidden, c.ffn));
  const bool gptq = s.method == "gptq";
  if (gptq && s.calibration.empty())
    user_error(
        "GPTQ needs calibration data: --calibration TOKENS.h5 (the training data, from "
        "`spectra prepare`)");
  if (s.seq_len == 0) s.seq_len = c.context;
  if (s.seq_len > c.context)
    user_error("--seq-len {} is longer than the model's context of {} tokens", s.seq_len,
               c.context);

  quant::QuantSettings qs;
  qs.options = {gptq ? quant::Method::gptq : quant::Method::rtn,
                {int(s.bits), s.scheme == "sym"},
                s.group_size,
                s.order == "activation",
                s.damp};
  Tensor calib;
  if (!s.calibration.empty()) {
    if (!s.calibration.ends_with(".h5") && !std::filesystem::is_directory(s.calibration))
      user_error(
          "--calibration {}: give a prepared token file (.h5, `spectra prepare`) or a "
          "directory of them",
          s.calibration);
    calib = quant::calibration_tokens(
        s.calibration,
        {s.samples, s.seq_len, s.seed, m.recipe.train.seq_len, m.recipe.data.val_fraction,
         m.tokenizer ? m.tokenizer->sha256() : "", c.vocab_size});
    qs.calibration = s.calibration;
    qs.samples = s.samples, qs.seq_len = s.seq_len, qs.seed = s.seed;
    if (!a.save_calibration.empty()) write_npy(a.save_calibration, calib, s.seq_len);
  }
  quant::QuantLM q = quant::quantize_model(*m.model, calib.defined() ? &calib : nullptr, qs,
                                           {a.batch, a.progress});
  quant::save_quantlm(s.out, m, q);
  print_summary(q);
  fmt::print(
      "quantized {} ({} {}) with {} to {} bits, group size {}{}: {} projections in {} -> "
      "{}\n",
      model_path, model_kind_name(c.kind), m.recipe.size, s.method, s.bits, s.group_size,
      s.order == "activation" ? ", act-order" : "", q.projections.size(),
      format_duration(clock.seconds()), s.out);
  if (!a.report.empty()) write_report(a.report, model_path, q, s, clock.seconds());
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Quantize a FloatLM's projections with GPTQ or round-to-nearest (a QuantLM)");
  a->cmd = cmd;
  cmd->add_option("model", a->input,
                  "FloatLM model file (train.out), or a QuantLM recipe (recipes/quantlm/*.yaml)")
      ->required();
  cmd->add_option("-o,--out", a->out, "Output model file (default: the recipe's quantize.out)");
  cmd->add_option("--bits", a->q.bits, "Bits per weight: 3, 4, 6 or 8")->capture_default_str();
  cmd->add_option("--group-size", a->q.group_size,
                  "Input columns per scale and zero (0: one per output row)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--method", a->q.method, "gptq, or rtn (round-to-nearest, the baseline)")
      ->check(CLI::IsMember({"gptq", "rtn"}))
      ->capture_default_str();
  cmd->add_option("--calibration", a->calibration,
                  "Prepared token file(s) to calibrate on (the training data; its held-out tail "
                  "is never used)");
  cmd->add_option("--samples", a->q.samples, "Calibration sequences")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seq-len", a->q.seq_len,
                  "Tokens per calibration sequence (default: the model's context)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->q.seed, "Seed of the calibration draw")->capture_default_str();
  cmd->add_flag("--act-order", a->act_order,
                "Quantize columns by decreasing Hessian diagonal (GPTQ's desc_act)");
  auto* sym = cmd->add_flag("--sym", a->sym, "Symmetric grid (the default)");
  cmd->add_flag("--asym", a->asym, "Asymmetric grid (a zero point per group)")->excludes(sym);
  cmd->add_option("--damp", a->q.damp, "Damping λ, relative to mean(diag H)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "Calibration sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_device_option(cmd, a->device);
  cmd->add_option("--set", a->sets, "Override a key of a QuantLM recipe (quantize.bits=3)");
  cmd->add_option("--report", a->report,
                  "Write the settings and each projection's layer errors as JSON");
  cmd->add_option("--save-calibration", a->save_calibration,
                  "Write the calibration token ids as NumPy int32 [samples, seq_len] (.npy)");
  cmd->add_flag("!--no-progress", a->progress, "No progress line on stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace spectra::tools
