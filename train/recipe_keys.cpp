#include "train/recipe_keys.h"

#include <fmt/format.h>

#include <algorithm>

#include "eval/tasks.h"

namespace spectra::recipe_keys {

// Every recipe key, in the order Recipe::text lists them.
std::vector<Field> recipe_fields(Recipe& r) {
  ModelConfig& m = r.model;
  return {
      {"model.kind", &m.kind, kAny, "trilm|floatlm", kRequired},
      {"model.size", &r.size},
      {"model.vocab_size", &m.vocab_size, kPositive, nullptr, kRequired},
      {"model.vocab_rows", &m.vocab_rows, kPositive},
      {"model.hidden", &m.hidden, kPositive, nullptr, kRequired},
      {"model.ffn", &m.ffn, kPositive, nullptr, kRequired},
      {"model.heads", &m.heads, kPositive, nullptr, kRequired},
      {"model.layers", &m.layers, kPositive, nullptr, kRequired},
      {"model.context", &m.context, kPositive, nullptr, kRequired},
      {"model.rope_theta", &m.rope_theta, kPositive},
      {"model.norm_eps", &m.norm_eps, kPositive},
      {"model.ternary_eps", &m.ternary_eps, kPositive},
      {"model.ternary_shards", &m.ternary_shards, kPositive},
      {"model.init_std", &m.init_std, kPositive},
      {"model.attention", &m.attention, kAny, kernels::kAttentionImplChoices},
      {"data.text", &r.data.text, kAny, nullptr, kPath},
      {"data.tokenizer", &r.data.tokenizer, kAny, nullptr, kPath},
      {"data.datasets", &r.data.datasets, kAny, nullptr, kPath},
      {"data.weights", &r.data.weights, kPositive},
      {"data.val_fraction", &r.data.val_fraction, kFraction},
      {"optimizer.beta1", &r.optimizer.beta1, kFraction},
      {"optimizer.beta2", &r.optimizer.beta2, kFraction},
      {"optimizer.eps", &r.optimizer.eps, kPositive},
      {"optimizer.grad_clip", &r.optimizer.grad_clip, kNonNeg},
      {"schedule.warmup_steps", &r.schedule.warmup_steps, kNonNeg},
      {"schedule.lr", &r.schedule.lr},
      {"schedule.weight_decay", &r.schedule.weight_decay},
      {"parallel.tp", &r.parallel.tp, kPositive},
      {"parallel.dp", &r.parallel.dp, kNonNeg},
      {"parallel.zero", &r.parallel.zero, kZeroStage},
      {"parallel.bucket_mb", &r.parallel.bucket_mb, kPositive},
      {"parallel.overlap", &r.parallel.overlap},
      {"parallel.timeout_s", &r.parallel.timeout_s, kNonNeg},
      {"train.steps", &r.train.steps, kPositive},
      {"train.seq_len", &r.train.seq_len, kPositive},
      {"train.micro_batch", &r.train.micro_batch, kPositive},
      {"train.global_batch", &r.train.global_batch, kPositive},
      {"train.device", &r.train.device},  // auto | cpu | cuda | cuda:N, checked below
      {"train.precision", &r.train.precision, kAny, "f32|bf16|fp16"},
      {"train.seed", &r.train.seed},
      {"train.out", &r.train.out},
      {"train.init", &r.train.init, kAny, nullptr, kPath},
      {"train.recompute", &r.train.recompute, kAny, "none|full"},
      {"train.cuda_graph", &r.train.cuda_graph},
      {"checkpoint.dir", &r.checkpoint.dir},
      {"checkpoint.interval", &r.checkpoint.interval, kNonNeg},
      {"checkpoint.keep", &r.checkpoint.keep, kPositive},
      {"checkpoint.async", &r.checkpoint.async},
      {"log.interval", &r.log.interval, kNonNeg},
      {"log.metrics", &r.log.metrics},
      {"log.peak_tflops", &r.log.peak_tflops, kNonNeg},
      {"eval.interval", &r.eval.interval, kNonNeg},
      {"eval.batches", &r.eval.batches, kNonNeg},
      {"eval.prompt", &r.eval.prompt},
      {"eval.sample_tokens", &r.eval.sample_tokens, kNonNeg},
      {"eval.tasks", &r.eval.tasks},
      {"quantize.model", &r.quantize.model, kAny, nullptr, kPath},
      {"quantize.out", &r.quantize.out},
      {"quantize.calibration", &r.quantize.calibration, kAny, nullptr, kPath},
      {"quantize.method", &r.quantize.method, kAny, "gptq|rtn"},
      {"quantize.bits", &r.quantize.bits, Range{3, 8, false, false}},
      {"quantize.group_size", &r.quantize.group_size, kNonNeg},
      {"quantize.scheme", &r.quantize.scheme, kAny, "sym|asym"},
      {"quantize.order", &r.quantize.order, kAny, "natural|activation"},
      {"quantize.damp", &r.quantize.damp, kPositive},
      {"quantize.samples", &r.quantize.samples, kPositive},
      {"quantize.seq_len", &r.quantize.seq_len, kNonNeg},
      {"quantize.seed", &r.quantize.seed},
  };
}

std::vector<Field> stage_fields(LrStage& s) {
  return {{"start", &s.start, kFraction, nullptr, kRequired},
          {"peak", &s.peak, kNonNeg, nullptr, kRequired},
          {"shape", &s.shape, kAny, "cosine|linear|constant"},
          {"floor", &s.floor, kUnit}};
}
std::vector<Field> stage_fields(WdStage& s) {
  return {{"start", &s.start, kFraction, nullptr, kRequired},
          {"value", &s.value, kNonNeg, nullptr, kRequired}};
}
std::vector<Field> stage_fields(EvalTask& t) {
  static const std::string names = fmt::format("{}", fmt::join(task_names(), "|"));
  return {{"task", &t.task, kAny, names.c_str(), kRequired},
          {"data", &t.data, kAny, nullptr, kRequired | kPath},
          {"limit", &t.limit, kNonNeg},
          {"num_fewshot", &t.num_fewshot, kNonNeg},
          {"fewshot_data", &t.fewshot_data, kAny, nullptr, kPath}};
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) d[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return d[b.size()];
}
}  // namespace

std::string suggest(const std::string& key, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& n : names)
    if (size_t d = edit_distance(key, n); d < best_d) best = n, best_d = d;
  if (!best.empty()) return fmt::format("did you mean '{}'?", best);
  if (names.size() > 16) return "docs/recipes.md lists the keys";
  return fmt::format("valid keys here: {}", fmt::join(names, ", "));
}

bool is_choice(const std::string& v, const char* choices) {
  std::string_view c(choices);
  for (size_t p = 0; p <= c.size();) {
    size_t e = c.find('|', p);
    if (e == std::string_view::npos) e = c.size();
    if (c.substr(p, e - p) == v) return true;
    p = e + 1;
  }
  return false;
}

}  // namespace spectra::recipe_keys
