#include "quant/quantlm.h"

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "data/hdf5.h"

namespace spectra::quant {

namespace {

constexpr const char* kAttr = "quantization";
constexpr const char* kGroup = "quantization";

// GPTQ's true-sequential steps: projections (indices into Block::projections) sharing one input.
const std::vector<std::vector<size_t>> kSteps = {{0, 1, 2}, {3}, {4, 5}, {6}};

// Runs every calibration batch through `block`; returns its outputs when `keep`.
std::vector<Tensor> run_block(Block& block, const std::vector<Tensor>& xs, int64_t seq, bool keep) {
  std::vector<Tensor> out;
  for (const Tensor& x : xs) {
    ag::Var y = block.forward(ag::Var(x), x.size(0) / seq, seq);
    if (keep) out.push_back(y.value());
  }
  return out;
}

}  // namespace

QuantLM quantize_model(LM& model, const Tensor* calibration, const QuantSettings& s,
                       const RunOptions& run) {
  ag::NoGradGuard no_grad;
  QuantLM out{s, {}};
  const bool gptq = s.options.method == Method::gptq;
  SPECTRA_CHECK(!gptq || calibration, "quantize_model: GPTQ needs calibration tokens");
  Options rtn = s.options;
  rtn.method = Method::rtn;
  const int64_t blocks = model.blocks();
  ProgressLine progress(
      fmt::format("quantize ({} {}-bit)", method_name(s.options.method), s.options.grid.bits),
      double(blocks * 7), "projections", run.progress);

  // The first block's inputs: the embeddings of the calibration batches.
  std::vector<Tensor> xs;
  if (calibration) {
    const int64_t n = calibration->numel() / s.seq_len, b = std::max<int64_t>(1, run.batch);
    for (int64_t i = 0; i < n; i += b) {
      const int64_t m = std::min(b, n - i);
      Tensor ids = calibration->slice(i * s.seq_len, (i + m) * s.seq_len).to(model.device());
      xs.push_back(model.embed(ids).value());
    }
  }
  int64_t done = 0;
  for (int64_t l = 0; l < blocks; l++) {
    Block& block = model.block(l);
    auto projections = block.projections();
    for (const std::vector<size_t>& step : kSteps) {
      std::optional<Hessian> h;
      if (calibration) {
        Linear& first = *projections[step[0]].second;
        h.emplace(first.weight().master.size(1), model.device());
        first.set_input_observer([&](const Tensor& x) { h->add(x); });
        run_block(block, xs, s.seq_len, false);
        first.set_input_observer({});
      }
      const Tensor hm = h ? h->mean() : Tensor();
      for (size_t i : step) {
        auto& [name, linear] = projections[i];
        Tensor& w = linear->weight().master;
        ProjectionResult r{fmt::format("model.layers.{}.{}.weight", l, name), {}, NAN, NAN};
        r.q = quantize(w, h ? &hm : nullptr, s.options);
        if (h) {
          r.error = layer_error(w, r.q.weight, hm);
          r.rtn_error = gptq ? layer_error(w, quantize(w, nullptr, rtn).weight, hm) : r.error;
        }
        w.copy_from(r.q.weight);
        r.q.weight = Tensor();  // the model holds it
        r.q.scales = r.q.scales.to(Device::cpu());
        r.q.zeros = r.q.zeros.to(Device::cpu());
        out.projections.push_back(std::move(r));
        progress.update(double(++done));
      }
    }
    if (calibration) xs = run_block(block, xs, s.seq_len, true);  // the next block's inputs
  }
  progress.finish();
  model.refresh_compute();
  return out;
}

void save_quantlm(const std::string& path, const LoadedModel& m, const QuantLM& q) {
  const Options& o = q.settings.options;
  nlohmann::ordered_json j = {{"method", method_name(o.method)},
                              {"bits", o.grid.bits},
                              {"group_size", o.group_size},
                              {"sym", o.grid.sym},
                              {"act_order", o.act_order},
                              {"damp", o.damp},
                              {"calibration", q.settings.calibration},
                              {"samples", q.settings.samples},
                              {"seq_len", q.settings.seq_len},
                              {"seed", q.settings.seed}};
  save_model(path, *m.model, m.recipe, true, [&](h5::File& f) {
    f.set_attr(kAttr, j.dump());
    f.create_group(kGroup);
    for (const ProjectionResult& p : q.projections) {
      const std::string g = std::string(kGroup) + "/" + p.name;
      f.create_group(g);
      f.write(g + "/scales", p.q.scales);
      f.write(g + "/zeros", p.q.zeros);
      f.write(g + "/g_idx", p.q.g_idx);
    }
  });
}

std::optional<QuantLM> read_quantlm(const std::string& path) {
  h5::File f = h5::File::open_read(path);
  if (!f.has_attr(kAttr)) return std::nullopt;
  QuantLM q;
  try {
    const nlohmann::json j = nlohmann::json::parse(f.attr_string(kAttr));
    Options& o = q.settings.options;
    o.method = j.at("method").get<std::string>() == "rtn" ? Method::rtn : Method::gptq;
    o.grid = {j.at("bits").get<int>(), j.at("sym").get<bool>()};
    o.group_size = j.at("group_size").get<int64_t>();
    o.act_order = j.at("act_order").get<bool>();
    o.damp = j.at("damp").get<double>();
    q.settings.calibration = j.at("calibration").get<std::string>();
    q.settings.samples = j.at("samples").get<int64_t>();
    q.settings.seq_len = j.at("seq_len").get<int64_t>();
    q.settings.seed = j.at("seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    user_error("{}: the '{}' attribute is malformed ({})", path, kAttr, e.what());
  }
  for (const std::string& name : f.list(kGroup)) {  // parameter names (in HDF5's order)
    const std::string g = std::string(kGroup) + "/" + name;
    for (const char* d : {"scales", "zeros", "g_idx"})
      if (!f.exists(g + "/" + d)) user_error("{}: '{}/{}' is missing", path, g, d);
    ProjectionResult r;
    r.name = name;
    r.q.scales = f.read(g + "/scales");
    r.q.zeros = f.read(g + "/zeros");
    r.q.g_idx = f.read(g + "/g_idx");
    if (r.q.scales.dtype() != DType::f32 || r.q.zeros.dtype() != DType::f32 ||
        r.q.g_idx.dtype() != DType::i32 || r.q.scales.dim() != 2 ||
        r.q.zeros.shape() != r.q.scales.shape() || r.q.g_idx.dim() != 1)
      user_error("{}: '{}' does not hold f32 scales and zeros [groups, out] and i32 g_idx", path,
                 g);
    q.projections.push_back(std::move(r));
  }
  return q;
}

}  // namespace spectra::quant
