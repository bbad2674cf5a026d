#include "train/plan.h"

#include <fmt/format.h>

#include <cmath>

namespace spectra {

std::string format_params(int64_t n) {
  const double x = double(n);
  if (x < 1e3) return fmt::format("{}", n);
  // Round to 4 significant digits first, so 999.96M becomes 1.000B rather than 1000M.
  const double scale = std::pow(10.0, std::floor(std::log10(x)) - 3);
  const double r = std::round(x / scale) * scale;
  const double unit = r >= 1e9 ? 1e9 : r >= 1e6 ? 1e6 : 1e3;
  const char* suffix = r >= 1e9 ? "B" : r >= 1e6 ? "M" : "K";
  const double v = r / unit;
  const int decimals = v >= 100 ? 1 : v >= 10 ? 2 : 3;
  return fmt::format("{:.{}f}{}", v, decimals, suffix);
}

MemoryPlan plan_memory(const Recipe& r, int dp) {
  const ModelConfig& m = r.model;
  const double tp = r.parallel.tp;
  const double d = double(m.hidden), L = double(m.layers), f = double(m.ffn),
               rows = double(m.vocab_rows);
  const double c = r.train.precision == "f32" ? 4 : 2;

  MemoryPlan p;
  p.dp = dp > 0 ? dp : std::max(1, r.parallel.dp);
  const double projections = L * (4 * d * d + 3 * d * f) / tp;
  const double P = projections + 2 * rows * d / tp + (2 * L + 1) * d;
  p.rank_params = int64_t(std::llround(P));
  p.master = 4 * P;
  if (c != 4)
    p.compute = c * P;
  else if (m.ternary())
    p.compute = 4 * projections;
  p.grads = 4 * P;
  p.optimizer = 8 * P / (r.parallel.zero ? p.dp : 1);
  const double tokens = double(r.train.micro_batch) * double(r.train.seq_len);
  p.activations = c * tokens * (L * (4 * d + (4 * d + 3 * f) / tp) + 2 * d + 2 * rows / tp);
  return p;
}

namespace {
std::string gib(double bytes) {
  if (bytes < 1073741824.0) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
  return fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}
std::string grouped(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); i++) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}
}  // namespace

std::string describe_model(const Recipe& r) {
  const ModelConfig& m = r.model;
  const int64_t n = m.parameter_count_unpadded(), padded = m.parameter_count();
  std::string out;
  auto line = [&](const char* what, const std::string& text) {
    out += fmt::format("{:<13}{}\n", what, text);
  };
  line("model", fmt::format("{}{}{} ({})", model_kind_name(m.kind), r.size.empty() ? "" : " ",
                            r.size, r.path));
  line("shape", fmt::format("{} layers, hidden {}, ffn {}, {} heads x {}, context {}, vocab {} "
                            "({} rows)",
                            m.layers, m.hidden, m.ffn, m.heads, m.head_dim(), m.context,
                            m.vocab_size, m.vocab_rows));
  line("parameters",
       fmt::format("{} ({}); allocated with the padded vocabulary: {} ({})", grouped(n),
                   format_params(n), grouped(padded), format_params(padded)));
  line("FLOPs/token", fmt::format("{:.3g} (training: forward + backward, attention at context {})",
                                  m.train_flops_per_token(), m.context));
  const int64_t tokens = r.train.global_batch * r.train.seq_len;
  line("layout",
       fmt::format("tp {} x dp {}, zero {}; {} sequences x {} tokens = {} tokens per "
                   "step, micro-batch {}; {} on {}",
                   r.parallel.tp, r.parallel.dp > 0 ? std::to_string(r.parallel.dp) : "auto",
                   r.parallel.zero, r.train.global_batch, r.train.seq_len, grouped(tokens),
                   r.train.micro_batch, r.train.precision, r.train.device));
  line("training",
       fmt::format("{} steps = {} tokens", r.train.steps, format_params(r.train.steps * tokens)));
  MemoryPlan p = plan_memory(r);
  std::string opt = gib(p.optimizer);
  if (r.parallel.zero)
    opt += fmt::format(" (ZeRO-1 over dp {}{})", p.dp, r.parallel.dp ? "" : ", dp auto");
  std::string compute =
      p.compute > 0 ? fmt::format(" + {} ({} compute copy)", gib(p.compute), r.train.precision)
                    : "";
  line("memory/GPU", fmt::format("{} = weights {} (f32 master){} + grads {} + AdamW {} + "
                                 "activations {} (micro-batch {} x {})",
                                 gib(p.total()), gib(p.master), compute, gib(p.grads), opt,
                                 gib(p.activations), r.train.micro_batch, r.train.seq_len));
  return out;
}

}  // namespace spectra
