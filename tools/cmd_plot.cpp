// spectra plot METRICS.jsonl [-o OUT.png]: a run's curves from the trainer's JSONL metrics (loss
// with the validation points, LR with weight decay, throughput, eval.tasks' accuracies) as one
// PNG.
// spectra plot RECIPE.yaml --schedule [-o OUT.png]: a recipe's LR and weight decay over its
// steps, without a run.
// gnuplot draws (Debian's gnuplot-nox): the data goes inline on its stdin as datablocks.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "tools/commands.h"
#include "train/recipe.h"

namespace spectra::tools {

namespace {
namespace fs = std::filesystem;

struct PlotArgs {
  std::string input, out;
  bool schedule = false;
  std::vector<std::string> overrides;
};

// One "train" record; NAN where the line lacks the key (older or partial logs).
struct TrainRow {
  double loss = NAN, lr = NAN, wd = NAN, tokens_per_s = NAN;
};
// Keyed by step: a resumed run appends and repeats the steps after its checkpoint, and its
// later lines are the ones that count.
struct Metrics {
  std::map<int64_t, TrainRow> train;
  std::map<int64_t, double> val_loss;
  std::map<std::string, std::map<int64_t, double>> accuracy;  // "task acc" -> step -> value
};

Metrics read_metrics(const std::string& path) {
  if (!fs::is_regular_file(path)) user_error("{}: no such metrics file", path);
  std::ifstream in(path);
  if (!in) user_error("{}: cannot read the metrics file", path);
  Metrics m;
  int line = 0;
  for (std::string text; std::getline(in, text);) {
    line++;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      user_error(
          "{}:{}: malformed line: not a JSON object (a spectra metrics file has one per line)",
          path, line);
    auto number = [&](const char* key, bool required) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) {
        if (required) user_error("{}:{}: malformed line: no '{}'", path, line, key);
        return double(NAN);
      }
      if (!it->is_number())
        user_error("{}:{}: malformed line: '{}' is not a number", path, line, key);
      return it->get<double>();
    };
    auto event = j.find("event");
    if (event == j.end() || !event->is_string()) continue;  // not ours to plot
    if (*event == "train") {
      int64_t step = int64_t(number("step", true));
      m.train[step] = {number("loss", true), number("lr", false), number("weight_decay", false),
                       number("tokens_per_s", false)};
    } else if (*event == "eval") {
      int64_t step = int64_t(number("step", true));
      m.val_loss[step] = number("val_loss", true);
    } else if (*event == "eval_task") {  // eval.tasks: their accuracies
      int64_t step = int64_t(number("step", true));
      auto task = j.find("task");
      if (task == j.end() || !task->is_string())
        user_error("{}:{}: malformed line: no 'task'", path, line);
      for (const char* key : {"acc", "acc_norm"})
        if (j.contains(key))
          m.accuracy[task->get<std::string>() + " " + key][step] = number(key, true);
    }
  }
  if (m.train.empty())
    user_error(
        "{}: no {{\"event\":\"train\"}} lines: is this a spectra metrics file "
        "(recipe key log.metrics)?",
        path);
  return m;
}

// A string for gnuplot's single quotes, where '' stands for '.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
std::string value(double v) { return std::isnan(v) ? "?" : fmt::format("{:.9g}", v); }

std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path exe = fs::path(dir.empty() ? "." : dir) / "gnuplot";
    if (access(exe.c_str(), X_OK) == 0) return exe.string();
  }
  user_error(
      "gnuplot is not installed; spectra plot draws with it (Debian: apt-get install "
      "gnuplot-nox)");
}

// Runs gnuplot on `script`, which sets the output; gnuplot's own messages are kept out of the
// way and its first error line, if any, ends up in ours.
void draw(const std::string& script, const std::string& out) {
  const std::string exe = find_gnuplot();
  fs::path dir = fs::absolute(out).parent_path();
  if (!fs::is_directory(dir)) user_error("{}: the folder '{}' does not exist", out, dir.string());
  fs::remove(out);
  const std::string log =
      (fs::temp_directory_path() / fmt::format("spectra-plot-{}.log", static_cast<long>(getpid())))
          .string();
  // If gnuplot stops reading early, its exit status reports it: a write must not kill us.
  auto old_pipe = std::signal(SIGPIPE, SIG_IGN);
  FILE* p = popen(fmt::format("'{}' 2>'{}'", exe, log).c_str(), "w");
  if (!p) throw Error("cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), p);
  int status = pclose(p);
  std::signal(SIGPIPE, old_pipe);
  std::ifstream messages(log);
  std::string first_error, text;
  while (std::getline(messages, text))
    if (first_error.empty() && text.find("rror") != std::string::npos) first_error = text;
  fs::remove(log);
  if (status != 0 || !fs::is_regular_file(out) || fs::file_size(out) == 0)
    throw Error(fmt::format("gnuplot did not write {} ({})", out,
                            first_error.empty() ? "no message" : first_error));
}

std::string header(const std::string& out, int panels, const std::string& title) {
  return fmt::format(
      "set terminal pngcairo size 1000,{} noenhanced font ',10'\n"
      "set output {}\nset datafile missing '?'\nset grid\nset key top right\n"
      "set multiplot layout {},1 title {}\nset xlabel 'step'\n"
      // Curves off the frame: x spans the data, a margin above a flat LR or weight decay.
      "set autoscale xfix\nset offsets 0, 0, graph 0.08, 0\n",
      300 * panels + 60, quoted(out), panels, quoted(title));
}

std::string metrics_script(const Metrics& m, const std::string& in, const std::string& out) {
  bool lr = false, wd = false, tps = false;
  double wd_max = 0;
  std::string s = "$train << EOD\n";
  for (const auto& [step, r] : m.train) {
    s += fmt::format("{} {} {} {} {}\n", step, value(r.loss), value(r.lr), value(r.wd),
                     value(r.tokens_per_s));
    lr |= !std::isnan(r.lr);
    wd |= !std::isnan(r.wd);
    if (r.wd > wd_max) wd_max = r.wd;
    tps |= !std::isnan(r.tokens_per_s);
  }
  s += "EOD\n$eval << EOD\n";
  for (const auto& [step, v] : m.val_loss) s += fmt::format("{} {}\n", step, value(v));
  s += "EOD\n";
  int block = 0;
  for (const auto& [name, points] : m.accuracy) {
    s += fmt::format("$acc{} << EOD\n", block++);
    for (const auto& [step, v] : points) s += fmt::format("{} {}\n", step, value(v));
    s += "EOD\n";
  }
  // Only panels and curves that have data: gnuplot fails on a plot with no points.
  s += header(out, 1 + (lr || wd) + tps + !m.accuracy.empty(), in);
  s += "set ylabel 'loss'\nplot $train using 1:2 with lines lw 1.5 title 'train loss'";
  if (!m.val_loss.empty()) s += ", $eval using 1:2 with linespoints pt 7 title 'val loss'";
  s += "\n";
  if (lr || wd) {
    s += fmt::format(
        "set ylabel 'learning rate'\nset format y '%.1e'\nset yrange [0:*]\n"
        "set y2label 'weight decay'\nset y2range [0:{:g}]\nset ytics nomirror\nset y2tics\nplot ",
        wd_max > 0 ? 1.1 * wd_max : 1.0);
    if (lr) s += "$train using 1:3 with lines lw 1.5 title 'lr' axes x1y1";
    if (wd)
      s += fmt::format("{}$train using 1:4 with lines title 'weight decay' axes x1y2",
                       lr ? ", " : "");
    s += "\nunset y2tics\nunset y2label\nset ytics mirror\nset format y '%g'\n"
         "set autoscale y\n";
  }
  if (tps) s += "set ylabel 'tokens/s'\nplot $train using 1:5 with lines lw 1.5 title 'tokens/s'\n";
  if (!m.accuracy.empty()) {
    s += "set ylabel 'accuracy'\nset yrange [0:1]\nplot ";
    block = 0;
    for (const auto& [name, points] : m.accuracy)
      s += fmt::format("{}$acc{} using 1:2 with linespoints pt 7 title {}", block ? ", " : "",
                       block, quoted(name)),
          block++;
    s += "\nset autoscale y\n";
  }
  return s + "unset multiplot\n";
}

// The schedule at up to ~2000 steps, plus both sides of every stage boundary so a drop is drawn
// as the step it is.
std::string schedule_script(const Recipe& r, const std::string& out) {
  const int64_t n = r.train.steps;
  std::set<int64_t> steps;
  for (int64_t k = 0; k <= 2000; k++)
    steps.insert(int64_t(std::llround(double(k) * (n - 1) / 2000)));
  auto boundary = [&](double f) {
    int64_t i = std::min(n - 1, int64_t(std::ceil(f * double(n))));
    steps.insert(i);
    if (i > 0) steps.insert(i - 1);
  };
  for (const LrStage& st : r.schedule.lr) boundary(st.start);
  for (const WdStage& st : r.schedule.weight_decay) boundary(st.start);
  if (r.schedule.warmup_steps < n) boundary(double(r.schedule.warmup_steps) / double(n));
  std::string s = "$schedule << EOD\n";
  for (int64_t i : steps)  // 1-based, as the trainer logs steps
    s += fmt::format("{} {} {}\n", i + 1, value(lr_at(r.schedule, i, n)),
                     value(weight_decay_at(r.schedule, i, n)));
  s += "EOD\n";
  s += header(out, 2, fmt::format("{}: schedule over {} steps", r.path, n));
  s += "set ylabel 'learning rate'\nset format y '%.1e'\nset yrange [0:*]\n"
       "plot $schedule using 1:2 with lines lw 1.5 title 'lr'\n"
       "set ylabel 'weight decay'\nset format y '%g'\nset yrange [0:*]\n"
       "plot $schedule using 1:3 with lines lw 1.5 title 'weight decay'\nunset multiplot\n";
  return s;
}

void run(const PlotArgs& a) {
  const bool recipe = a.schedule || a.input.ends_with(".yaml") || a.input.ends_with(".yml");
  std::string out = a.out;
  if (out.empty())  // beside a metrics file; a recipe's in the working directory
    out = recipe ? fs::path(a.input).stem().string() + "-schedule.png"
                 : fs::path(a.input).replace_extension(".png").string();
  if (recipe) {
    Recipe r = load_recipe(a.input, a.overrides);
    draw(schedule_script(r, out), out);
  } else {
    draw(metrics_script(read_metrics(a.input), a.input, out), out);
  }
  fmt::print("wrote {}\n", out);
}
}  // namespace

void add_plot(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Plot a run's metrics (loss, LR, throughput) or a recipe's schedule to a PNG");
  cmd->add_option("input", args->input,
                  "Metrics JSONL (recipe key log.metrics), or a recipe (.yaml) with --schedule")
      ->required();
  cmd->add_option("-o,--out", args->out,
                  "PNG to write (default: METRICS.png beside the metrics; RECIPE-schedule.png)");
  cmd->add_flag("--schedule", args->schedule,
                "Plot the recipe's LR and weight decay over its steps (implied by .yaml)");
  cmd->add_option("--set", args->overrides, "Override a recipe key (with --schedule)")
      ->type_name("KEY=VALUE");
  cmd->callback([args] { run(*args); });
}

}  // namespace spectra::tools
