#include "train/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "dist/data_parallel.h"
#include "dist/topology.h"
#include "kernels/ternary_packed.h"
#include "layers/lm.h"

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
  const double c = r.train.precision == "f32" ? 4 : 2;
  MemoryPlan p;
  p.dp = dp > 0 ? dp : std::max(1, r.parallel.dp);
  // The arena and buckets the model and the data-parallel engine will allocate, from their own
  // layout rules (layers/lm.h, dist/data_parallel.h).
  const LM::ArenaLayout arena = LM::arena_layout(m, r.parallel.tp);
  const int zero = dist::zero_stage(r.parallel.zero, p.dp);
  const dist::BucketPlan buckets =
      dist::plan_buckets(arena.segment_offsets, arena.elements, p.dp, zero,
                         dist::bucket_elements(r.parallel.bucket_mb));
  const double P = double(arena.elements);
  p.rank_params = arena.elements;
  p.master = 4 * P;
  const int64_t blocks = arena.segment_offsets.back() - arena.segment_offsets[1];
  const double projections = double(blocks - 2 * m.layers * m.hidden);  // less the norm gains
  if (c != 4)
    p.compute = c * P;
  else if (m.ternary())
    p.compute = 4 * projections;
  if (zero == 3) {
    // The latent shard, and every float parameter replicated as the passes read it (gathered
    // so): in a 16-bit run its compute copy alone, the norm gains in f32; else all in f32.
    const double floats = m.ternary() ? P - projections : P,
                 norms = double((2 * m.layers + 1) * m.hidden);
    p.master = 4 * double(buckets.shard_elements) + 4 * (c != 4 ? norms : floats);
    p.compute = c != 4 ? c * (floats - norms) : 0;
    if (m.ternary()) {
      // The projections' compute copies exist for two buckets at a time; every projection's
      // 2-bit codes (rows padded to 256 columns) are replicated.
      const int64_t d = m.hidden, tp = r.parallel.tp, q = d / tp, f = m.ffn / tp;
      auto code_bytes = [](int64_t rows, int64_t cols) {
        kernels::PackedTernary shape;  // the packing's own rule for padded rows
        shape.cols = cols;
        return rows * shape.row_bytes();
      };
      p.codes = double(m.layers * (3 * code_bytes(q, d) + code_bytes(d, q) + 2 * code_bytes(f, d) +
                                   code_bytes(d, f)));
      const double per_block = double(4 * q * d + 3 * f * d);
      int64_t most = 0;  // blocks in the largest bucket
      for (const dist::BucketPlan::Span& b : buckets.buckets)
        most = std::max<int64_t>(
            most, std::min<int64_t>(b.last_segment, m.layers) - std::max(b.first_segment, 1) + 1);
      p.compute += c * 2 * double(most) * per_block;
    }
  }
  p.grads = 4 * double(buckets.gradient_elements);
  p.optimizer = 8 * double(buckets.shard_elements);
  p.buckets = int64_t(buckets.buckets.size());
  p.largest_bucket = buckets.largest;
  const double d = double(m.hidden), f = double(m.ffn), rows = double(m.vocab_rows),
               tp = r.parallel.tp, L = double(m.layers);
  const double tokens = double(r.train.micro_batch) * double(r.train.seq_len);
  const double block = 4 * d + (4 * d + 3 * f) / tp;  // what one block saves per token
  // Full recomputation keeps each block's input, and one block's activations while its
  // backward runs.
  const double saved = r.train.recompute == "full" ? L * d + block : L * block;
  p.activations = c * tokens * (saved + 2 * d + 2 * rows / tp);
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

namespace {
// "what" padded to one column, then the text: the aligned blocks inspect and --dry-run print.
void add_line(std::string& out, const std::string& what, const std::string& text) {
  out += fmt::format("{:<13}{}\n", what, text);
}

// The model: kind, shape, parameters, FLOPs per token (both describe_model and describe_plan).
std::string model_lines(const Recipe& r) {
  const ModelConfig& m = r.model;
  const int64_t n = m.parameter_count_unpadded(), padded = m.parameter_count();
  std::string out;
  add_line(out, "model",
           fmt::format("{}{}{} ({})", model_kind_name(m.kind), r.size.empty() ? "" : " ", r.size,
                       r.path));
  add_line(out, "shape",
           fmt::format("{} layers, hidden {}, ffn {}, {} heads x {}, context {}, vocab {} "
                       "({} rows)",
                       m.layers, m.hidden, m.ffn, m.heads, m.head_dim(), m.context, m.vocab_size,
                       m.vocab_rows));
  if (m.ternary())
    add_line(out, "scales",
             m.ternary_shards == 1
                 ? std::string("one TriLM scale per projection")
                 : fmt::format("{} TriLM scales per projection, one per block of 1/{} along its "
                               "tensor-parallel split",
                               m.ternary_shards, m.ternary_shards));
  add_line(out, "parameters",
           fmt::format("{} ({}); allocated with the padded vocabulary: {} ({})", grouped(n),
                       format_params(n), grouped(padded), format_params(padded)));
  add_line(out, "FLOPs/token",
           fmt::format("{:.3g} (training: forward + backward, attention at context {})",
                       m.train_flops_per_token(), m.context));
  return out;
}
}  // namespace

std::string describe_model(const Recipe& r) {
  std::string out = model_lines(r);
  auto line = [&](const char* what, const std::string& text) { add_line(out, what, text); };
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
  if (dist::zero_stage(r.parallel.zero, p.dp))
    opt += fmt::format(" (ZeRO-{} over dp {})", r.parallel.zero, p.dp);
  std::string compute =
      p.compute > 0 ? fmt::format(" + {} ({} compute copy)", gib(p.compute), r.train.precision)
                    : "";
  if (p.codes > 0) compute += fmt::format(" + {} (2-bit codes)", gib(p.codes));
  line("memory/GPU",
       fmt::format("{} = weights {} (f32 {}){} + grads {} + AdamW {} + "
                   "activations {} (micro-batch {} x {})",
                   gib(p.total()), gib(p.master),
                   dist::zero_stage(r.parallel.zero, p.dp) == 3 ? "shard" : "master", compute,
                   gib(p.grads), opt, gib(p.activations), r.train.micro_batch, r.train.seq_len));
  return out;
}

TrainingPlan plan_training(const Recipe& r, const PlanOptions& o) {
  TrainingPlan p;
  p.tp = r.parallel.tp;
  p.world = o.world > 0 ? o.world : p.tp * std::max(1, r.parallel.dp);
  dist::check_layout(p.tp, r.parallel.dp, p.world, r.path);
  p.dp = p.world / p.tp;
  p.micro_batch = r.train.micro_batch;
  const int64_t global = r.train.global_batch;
  p.accumulation = dist::accumulation_steps(global, p.micro_batch, p.dp);
  if (p.accumulation == 0) {
    // The largest micro-batch that does split the global batch over this dp, if any.
    int64_t b = p.micro_batch;
    while (b > 0 && dist::accumulation_steps(global, b, p.dp) == 0) b--;
    std::string fix = b > 0 ? fmt::format("--set train.micro_batch={} splits it", b)
                            : fmt::format("dp {} does not divide it: plan another world", p.dp);
    user_error(
        "{}: train.global_batch {} is not a multiple of train.micro_batch {} x dp {} (world {} / "
        "parallel.tp {}); {}",
        r.where("train.global_batch"), global, p.micro_batch, p.dp, p.world, p.tp, fix);
  }
  p.steps = r.train.steps;
  p.tokens_per_step = global * r.train.seq_len;
  p.total_tokens = p.steps * p.tokens_per_step;
  p.parameters = r.model.parameter_count_unpadded();
  p.flops_per_token = r.model.train_flops_per_token();
  for (double f : {0.0, 0.25, 0.5, 2.0 / 3.0, 1.0}) {
    // The first 0-based step i with i / steps >= f, computed as lr_at() computes its fraction,
    // so a stage that starts at f (TriLM's 0.5 and 2/3) is in force there.
    const double n = double(p.steps);
    int64_t i = std::min(p.steps - 1, int64_t(std::ceil(f * n)));
    while (i > 0 && double(i - 1) / n >= f) i--;
    while (i < p.steps - 1 && double(i) / n < f) i++;
    p.schedule.push_back(
        {f, i + 1, lr_at(r.schedule, i, p.steps), weight_decay_at(r.schedule, i, p.steps)});
  }
  p.memory = plan_memory(r, p.dp);
  p.gpu_memory = o.gpu_memory_gib * 1073741824.0;
  p.tokens_per_second = o.tokens_per_second_per_gpu;
  if (o.tokens_per_second_per_gpu > 0)
    p.seconds = double(p.total_tokens) / (o.tokens_per_second_per_gpu * p.world);
  return p;
}

void require_fit(const TrainingPlan& p, const Recipe& r) {
  if (p.fits()) return;
  const MemoryPlan& m = p.memory;
  const double states = m.total() - m.activations;  // what no micro-batch size changes
  // The largest micro-batch that fits and still splits the global batch, to suggest.
  int64_t b = std::min(p.micro_batch - 1,
                       int64_t((p.gpu_memory - states) / (m.activations / double(p.micro_batch))));
  while (b > 0 && dist::accumulation_steps(r.train.global_batch, b, p.dp) == 0) b--;
  std::string fix = b > 0 ? fmt::format("--set train.micro_batch={} fits, or raise parallel.tp", b)
                          : "raise parallel.tp";
  if (b <= 0 && r.parallel.zero < 2 && dist::zero_stage(2, p.dp) > 0)
    fix += fmt::format(" or set parallel.zero: {} (shards {} over dp)", r.parallel.zero + 1,
                       r.parallel.zero ? "the gradients too" : "the AdamW state");
  user_error(
      "{}: needs {} per GPU ({} weights, gradients and AdamW state + {} activations at "
      "micro-batch {}) but --gpu-memory is {:g} GiB; {}",
      r.where("train.micro_batch"), gib(m.total()), gib(states), gib(m.activations), p.micro_batch,
      p.gpu_memory / 1073741824.0, fix);
}

namespace {
std::string duration(double seconds) {
  const int64_t m = std::llround(seconds / 60), h = m / 60, d = h / 24;
  if (d > 0) return fmt::format("{}d {}h", d, h % 24);
  if (h > 0) return fmt::format("{}h {}m", h, m % 60);
  return fmt::format("{}m", m);
}
std::string percent(double f) { return fmt::format("{:.3g}%", 100 * f); }
}  // namespace

std::string describe_plan(const TrainingPlan& p, const Recipe& r, const std::string& data,
                          int64_t data_tokens) {
  std::string out = model_lines(r);
  auto line = [&](const std::string& what, const std::string& text) { add_line(out, what, text); };
  const int stage = dist::zero_stage(r.parallel.zero, p.dp);
  std::string zero =
      stage == 0   ? ""
      : stage == 1 ? fmt::format(", ZeRO-1 (AdamW state sharded over dp {})", p.dp)
      : stage == 2 ? fmt::format(", ZeRO-2 (AdamW state and gradients sharded over dp {})", p.dp)
                   : fmt::format(
                         ", ZeRO-3 (weights, AdamW state and gradients sharded over dp "
                         "{}; CPU only for now)",
                         p.dp);
  line("world", fmt::format("{} GPU{} = tp {} x dp {}{}{}", p.world, p.world == 1 ? "" : "s", p.tp,
                            p.dp, r.parallel.dp ? "" : " (parallel.dp auto)", zero));
  line("batch",
       fmt::format("{} sequences x {} tokens = {} tokens per step = micro-batch {} x dp {} x {} "
                   "accumulation steps",
                   r.train.global_batch, grouped(r.train.seq_len), grouped(p.tokens_per_step),
                   p.micro_batch, p.dp, p.accumulation));
  line("training",
       fmt::format("{} steps = {} tokens ({}); {} on {}", grouped(p.steps), grouped(p.total_tokens),
                   format_params(p.total_tokens), r.train.precision, r.train.device));
  if (!data.empty())
    line("data", data_tokens > 0 ? fmt::format("{}; the run reads them {:.2f} times", data,
                                               double(p.total_tokens) / double(data_tokens))
                                 : data);

  line("schedule", fmt::format("{:<8}{:<10}{:<12}{}", "at", "step", "lr", "weight decay"));
  for (const SchedulePoint& s : p.schedule)
    line("", fmt::format("{:<8}{:<10}{:<12.3e}{:g}", percent(s.fraction), grouped(s.step), s.lr,
                         s.weight_decay));
  std::string stages = fmt::format("warmup {} steps; lr", grouped(r.schedule.warmup_steps));
  for (const LrStage& st : r.schedule.lr)
    stages += fmt::format(" {:g} {} to {:g}% from {},", st.peak, st.shape, 100 * st.floor,
                          percent(st.start));
  stages.pop_back();
  line("", stages);
  std::string wd = "weight decay";
  for (const WdStage& st : r.schedule.weight_decay)
    wd += fmt::format(" {:g} from {},", st.value, percent(st.start));
  wd.pop_back();
  line("", wd);
  line("", "(step: as the trainer logs it, 1-based; the first step at or after the fraction)");

  const MemoryPlan& m = p.memory;
  bool first = true;
  auto mem = [&](const char* what, double bytes, const std::string& note) {
    line(first ? "memory/GPU" : "", fmt::format("{:<13}{:>10}  {}", what, gib(bytes), note));
    first = false;
  };
  const bool codes = m.codes > 0;  // ZeRO-3 of a TriLM
  const bool sixteen = r.train.precision != "f32";
  // Under ZeRO-3 the float parameters are replicated as gathered: in the compute dtype in a
  // 16-bit run (the norm gains in f32), else in f32.
  const std::string gathered = sixteen ? "the norm gains"
                               : codes ? "the embedding, norms and LM head"
                                       : "every weight";
  mem("weights", m.master,
      stage < 3
          ? "f32 master"
          : fmt::format("f32: the latent shard over dp {}, and {} as gathered", p.dp, gathered));
  std::string compute = r.train.precision == "f32" ? "f32 ternary projections" : r.train.precision;
  if (stage == 3 && sixteen)
    compute += codes ? ": the embedding and LM head as gathered, the projections of two buckets "
                       "at a time"
                     : ": every weight but the norm gains, as gathered";
  else if (codes)
    compute += ", the projections of two buckets at a time";
  if (m.compute > 0) mem("compute copy", m.compute, compute);
  if (codes) mem("codes", m.codes, "every projection's 2-bit codes, replicated");
  const std::string buckets = fmt::format("{} bucket{} of up to {}", m.buckets,
                                          m.buckets == 1 ? "" : "s", gib(4.0 * m.largest_bucket));
  mem("gradients", m.grads,
      stage >= 2
          ? fmt::format("f32, sharded over dp {}, plus a ring of two of its {}", p.dp, buckets)
      : stage == 1 ? fmt::format("f32, and the reduced shard; {}", buckets)
      : p.dp > 1   ? fmt::format("f32; {}", buckets)
                   : "f32");
  mem("AdamW", m.optimizer,
      stage ? fmt::format("m and v in f32, sharded over dp {}", p.dp) : "m and v in f32");
  mem("activations", m.activations,
      fmt::format("micro-batch {} x {} tokens, {}", p.micro_batch, grouped(r.train.seq_len),
                  r.train.recompute == "full" ? "blocks recomputed" : "no recomputation"));
  const double headroom = p.gpu_memory - m.total();
  mem("total", m.total(),
      fmt::format("of {:g} GiB (--gpu-memory): {} {}", p.gpu_memory / 1073741824.0,
                  p.fits() ? "fits," : "does not fit,",
                  p.fits() ? gib(headroom) + " headroom" : gib(-headroom) + " short"));
  line("", "(not counted: the CUDA context, workspaces, fragmentation: allow a few GiB)");
  if (p.seconds > 0)
    line("time", fmt::format("{} at {} tokens/s per GPU x {} GPUs = {} tokens/s",
                             duration(p.seconds), grouped(std::llround(p.tokens_per_second)),
                             p.world, grouped(std::llround(p.tokens_per_second * p.world))));
  else
    line("time",
         "unknown: measure tokens/s on one GPU with `spectra bench RECIPE`, then pass "
         "--tokens-per-second-per-gpu X");
  return out;
}

}  // namespace spectra
