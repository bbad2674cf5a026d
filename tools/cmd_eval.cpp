// spectra eval MODEL --task T --data FILE: evaluation with lm-evaluation-harness's semantics
// (eval/evaluate.h), zero-shot or with its few-shot examples (--num-fewshot, eval/fewshot.h): a
// table with standard errors on stdout, the metrics as JSON (--output) and markdown
// (--markdown), each document's scores as JSONL (--samples). Repeat --task/--data pairs to run
// several tasks, or --suite spectra --data-dir DIR for the paper's 13.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/log.h"
#include "core/progress.h"
#include "dist/topology.h"
#include "dist/world.h"
#include "eval/evaluate.h"
#include "eval/fewshot.h"
#include "tools/commands.h"
#include "train/model_file.h"
#include "train/placement.h"

namespace spectra::tools {

namespace {
struct EvalArgs {
  std::string model, device = "auto", precision = "auto", tokenizer, output, samples, split = "val";
  std::string suite, data_dir, markdown;
  std::vector<std::string> tasks, data, fewshot_data;
  int64_t limit = 0, num_fewshot = 0;
  uint64_t fewshot_seed = kFewshotSeed;
  double val_fraction = -1;  // < 0: the recipe's data.val_fraction
  EvalOptions options;
  WeightArgs weights{"auto", "exact"};
};

std::ofstream open_output(const std::string& path, const char* flag) {
  std::ofstream f(path);
  if (!f) user_error("{}: cannot create ({})", path, flag);
  return f;
}

// --num-fewshot: the examples come from the file lm-eval's configuration of the task names
// (eval/fewshot.h): --fewshot-data, or the task's own file where that is the evaluated split.
void add_fewshot_examples(const EvalArgs& a, size_t i, Task& task) {
  if (a.num_fewshot > 0 && fewshot_source(task.name).zero_shot)
    log::info("{}: scored without few-shot examples, as lm-eval does ({})", task.name,
              task.name == "perplexity" ? "rolling windows take no context"
                                        : "its configuration fixes num_fewshot 0");
  add_fewshot(task, a.fewshot_data.empty() ? "" : a.fewshot_data[i], a.num_fewshot, a.fewshot_seed,
              "give --fewshot-data FILE for each --task");
}

// The Spectra paper's table: lm-eval's 13 tasks, in its order, each file named after its task in
// the suite's folder (the split lm-eval evaluates; with --num-fewshot also TASK.SPLIT.jsonl, the
// split the examples come from), and the validation perplexity of wikitext.jsonl when present.
const std::vector<std::string> kSpectraSuite = {
    "arc_easy",   "arc_challenge",       "hellaswag",     "boolq",  "piqa",
    "winogrande", "lambada_openai",      "sciq",          "logiqa", "mmlu_continuation",
    "triviaqa",   "crows_pairs_english", "truthfulqa_mc1"};

void use_suite(EvalArgs& a) {
  if (a.suite != "spectra") user_error("--suite {}: the one suite is 'spectra'", a.suite);
  if (a.data_dir.empty()) user_error("--suite spectra needs --data-dir DIR (docs/evaluation.md)");
  if (!a.tasks.empty() || !a.data.empty() || !a.fewshot_data.empty())
    user_error(
        "--suite spectra names its own tasks and files: give no --task, --data or "
        "--fewshot-data");
  const std::filesystem::path dir(a.data_dir);
  std::vector<std::string> missing;
  for (const std::string& task : kSpectraSuite) {
    const FewshotSource source = fewshot_source(task);
    const std::string file = (dir / (task + ".jsonl")).string();
    const std::string examples = a.num_fewshot > 0 && !source.zero_shot && !source.own_file
                                     ? (dir / (task + "." + source.split + ".jsonl")).string()
                                     : file;
    for (const std::string& f : {file, examples}) {
      const std::string name = std::filesystem::path(f).filename().string();
      if (!std::filesystem::is_regular_file(f) &&
          std::find(missing.begin(), missing.end(), name) == missing.end())
        missing.push_back(name);
    }
    a.tasks.push_back(task), a.data.push_back(file), a.fewshot_data.push_back(examples);
  }
  if (!missing.empty())
    user_error("{}: the spectra suite needs {} there (docs/evaluation.md lays the folder out)",
               a.data_dir, fmt::join(missing, ", "));
  if (std::filesystem::is_regular_file(dir / "wikitext.jsonl"))
    a.tasks.push_back("perplexity"), a.data.push_back((dir / "wikitext.jsonl").string()),
        a.fewshot_data.push_back(a.data.back());
  // By default the results go beside the model file.
  const std::string stem = std::filesystem::path(a.model).replace_extension().string();
  if (a.output.empty()) a.output = stem + ".spectra.json";
  if (a.markdown.empty()) a.markdown = stem + ".spectra.md";
}

// lm-eval's results table (make_table): one row per metric, its standard error where it has one.
std::string markdown_table(const std::vector<TaskResult>& results, int64_t shots) {
  std::string md =
      "| Task | n-shot | Metric | Value |   | Stderr |\n|---|---:|---|---:|---|---:|\n";
  for (const TaskResult& r : results)
    for (const auto& [name, value] : r.metrics) {
      const auto e = r.stderrs.find(name);
      const bool has = e != r.stderrs.end() && std::isfinite(e->second);
      md += fmt::format("| {} | {} | {} | {:.4f} | {} | {} |\n", r.task, shots, name, value,
                        has ? "±" : "", has ? fmt::format("{:.4f}", e->second) : "N/A");
    }
  return md;
}

void run(EvalArgs& a) {
  if (!a.suite.empty()) use_suite(a);
  if (a.tasks.empty()) user_error("give --task NAME --data FILE (repeatable), or --suite spectra");
  if (a.tasks.size() != a.data.size())
    user_error("give one --data FILE per --task ({} tasks, {} data files)", a.tasks.size(),
               a.data.size());
  if (!a.fewshot_data.empty() && a.fewshot_data.size() != a.tasks.size())
    user_error("give one --fewshot-data FILE per --task ({} tasks, {} few-shot files)",
               a.tasks.size(), a.fewshot_data.size());
  for (const std::string& t : a.tasks) task_type(t);  // unknown names fail before loading
  const Device d = resolve_device(a.device, "--device");
  // Under mpirun the ranks split the model tensor-parallel: each scores every document with its
  // block of each weight (the vocabulary-parallel logits gathered where they are scored), and
  // rank 0 reports. Packed weights are for one process.
  const bool parallel = dist::world_size() > 1;
  std::optional<dist::Topology> topo;
  LoadedModel m;
  std::vector<std::optional<Task>> tasks(a.tasks.size());
  std::string refused;  // under mpirun every rank fails alike: one of them says so
  try {
    if (parallel) {
      topo.emplace(dist::Topology::create(dist::world_size(), 1, "spectra eval under mpirun"));
      if (a.weights.weights == "packed")
        user_error("{}: --weights packed runs in one process (not under mpirun)", a.model);
      a.weights.weights = "latent";
    }
    m = load_model(a.model, d, resolve_precision(a.precision, d, "--precision"),
                   topo ? &topo->tp_group : nullptr);
    if (!a.tokenizer.empty()) {
      Tokenizer given = Tokenizer::load(a.tokenizer);
      if (m.tokenizer && given.sha256() != m.tokenizer->sha256())
        user_error("{}: this tokenizer (sha256 {}) is not the one the model was trained with ({})",
                   a.tokenizer, given.sha256().substr(0, 16), m.tokenizer->sha256().substr(0, 16));
      if (given.vocab_size() > m.recipe.model.vocab_size)
        user_error("{}: {} tokens, more than the model's vocabulary of {}", a.tokenizer,
                   given.vocab_size(), m.recipe.model.vocab_size);
      if (!m.tokenizer) m.tokenizer = std::make_unique<Tokenizer>(std::move(given));
    }
    for (size_t i = 0; i < a.tasks.size(); i++)  // text tasks are read (and checked) up front
      if (!(a.tasks[i] == "perplexity" && a.data[i].ends_with(".h5"))) {
        tasks[i] = load_task(a.tasks[i], a.data[i], a.limit);
        add_fewshot_examples(a, i, *tasks[i]);
      }
  } catch (const UserError& e) {
    if (!parallel) throw;
    refused = e.what();
  }
  if (parallel) dist::fail_together(refused);
  apply_weight_options(*m.model, a.weights, a.model);
  EvalOptions o = a.options;
  o.seq_len = o.seq_len > 0 ? o.seq_len : m.recipe.train.seq_len;
  o.val_split = a.split == "val";
  o.val_fraction = a.val_fraction >= 0 ? a.val_fraction : m.recipe.data.val_fraction;
  o.samples = !a.samples.empty();

  const bool report = !parallel || dist::world_rank() == 0;
  o.progress = o.progress && report;
  std::ofstream samples;
  if (o.samples && report) samples = open_output(a.samples, "--samples");
  std::vector<TaskResult> results;
  for (size_t i = 0; i < a.tasks.size(); i++) {
    const std::string& file = a.data[i];
    if (a.tasks[i] == "perplexity" && file.ends_with(".h5")) {
      results.push_back(
          evaluate_token_file(*m.model, file, m.tokenizer ? m.tokenizer->sha256() : "", o));
    } else {
      results.push_back(evaluate(*m.model, m.tokenizer.get(), *tasks[i], o));
    }
    for (nlohmann::json& s : results.back().samples) {
      s["task"] = a.tasks[i];
      samples << s.dump() << "\n";
    }
  }

  if (!report) return;
  fmt::print("{:<19} {:>6}  {:<19} {:>12}   {:>10}  {}\n", "task", "docs", "metric", "value",
             "stderr", "data");
  for (const TaskResult& r : results)
    for (const auto& [name, value] : r.metrics) {
      const auto e = r.stderrs.find(name);
      const std::string stderr_text = e != r.stderrs.end() && std::isfinite(e->second)
                                          ? fmt::format("± {:.6f}", e->second)
                                          : "";
      fmt::print("{:<19} {:>6}  {:<19} {:>12.6f} {:>12}  {}\n", r.task, r.docs, name, value,
                 stderr_text, r.path);
    }
  if (!a.output.empty()) {
    nlohmann::json j = {
        {"model", a.model}, {"num_fewshot", a.num_fewshot}, {"results", nlohmann::json::array()}};
    if (!a.suite.empty()) j["suite"] = a.suite;
    for (const TaskResult& r : results) j["results"].push_back(r.to_json());
    open_output(a.output, "--output") << j.dump(2) << "\n";
  }
  if (!a.markdown.empty())
    open_output(a.markdown, "--markdown") << markdown_table(results, a.num_fewshot);
}
}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a model file on tasks, with lm-evaluation-harness's semantics");
  cmd->add_option("model", a->model, "Model file written by `spectra train` (train.out)")
      ->required();
  cmd->add_option(
      "--task", a->tasks,
      fmt::format("{} (repeatable, each with a --data)", fmt::join(task_names(), ", ")));
  cmd->add_option("--data", a->data,
                  "The task's file: JSONL records (docs/evaluation.md); for perplexity also text "
                  "(.txt/.gz) or a token file (.h5) from `spectra prepare`");
  cmd->add_option("--suite", a->suite,
                  "spectra: the paper's 13 tasks, files found by task name in --data-dir; results "
                  "beside the model (MODEL.spectra.json, .md) unless -o/--markdown say where");
  cmd->add_option("--data-dir", a->data_dir,
                  "The suite's folder: TASK.jsonl per task (docs/evaluation.md)");
  cmd->add_option("--markdown", a->markdown, "Write lm-eval's results table (markdown) here");
  add_placement_options(cmd, a->device, a->precision);
  add_weight_options(cmd, a->weights);
  cmd->add_option("--batch", a->options.batch, "Sequences per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--limit", a->limit, "Evaluate only the first N documents of each task")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--num-fewshot", a->num_fewshot,
                  "Few-shot examples before each document, chosen as lm-eval chooses them "
                  "(docs/evaluation.md)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--fewshot-data", a->fewshot_data,
                  "Where each task's examples come from (repeatable, one per --task): the split "
                  "lm-eval draws from, e.g. ARC's train (default: the task's own file, for the "
                  "tasks whose examples come from it)");
  cmd->add_option("--fewshot-seed", a->fewshot_seed,
                  "Seed of the example sampler (lm-eval's --seed, fourth value)")
      ->capture_default_str();
  cmd->add_option("--max-length", a->options.max_length,
                  "Tokens a request may use (default: the model's context)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-gen-toks", a->options.max_gen_toks,
                  "Generative tasks (triviaqa): new tokens at most per document")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seq-len", a->options.seq_len,
                  "Token files: window length (default: the recipe's train.seq_len)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--split", a->split,
                  "Token files: val (the held-out tail the trainer validates on) or all")
      ->check(CLI::IsMember({"val", "all"}))
      ->capture_default_str();
  cmd->add_option("--val-fraction", a->val_fraction,
                  "Token files: the held-out fraction (default: the recipe's data.val_fraction)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--tokenizer", a->tokenizer,
                  "tokenizer.json to use (must be the model's; needed for a model without one)");
  cmd->add_option("-o,--output", a->output, "Write the metrics as JSON to this file");
  cmd->add_option("--samples", a->samples, "Write each document's scores as JSONL to this file");
  cmd->add_flag("!--no-progress", a->options.progress, "No progress line on stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace spectra::tools
