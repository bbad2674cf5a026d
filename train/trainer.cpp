#include "train/trainer.h"

#include <fmt/format.h>

#include <cmath>
#include <csignal>

#include "autograd/var.h"
#include "core/cuda_runtime.h"
#include "core/log.h"
#include "core/progress.h"
#include "dist/topology.h"
#include "dist/watchdog.h"
#include "dist/world.h"
#include "eval/evaluate.h"
#include "eval/fewshot.h"
#include "eval/generate.h"
#include "kernels/elementwise.h"
#include "kernels/peak_flops.h"
#include "train/batch_source.h"
#include "train/checkpoint.h"
#include "train/graphed_step.h"
#include "train/metrics.h"
#include "train/model_file.h"
#include "train/optimizer.h"
#include "train/placement.h"
#include "train/training_model.h"

namespace spectra {

namespace {

// SIGTERM / SIGUSR1 (a scheduler's preemption notice): checkpoint at the end of this step, exit.
volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int sig) { g_stop_signal = sig; }

// The mean of a host value over the ranks of a group.
double mean_over(const dist::Group& g, double v) {
  if (g.size() == 1) return v;
  Tensor t = Tensor::full({1}, v, DType::f64);
  g.all_reduce(t);
  return t.item() / g.size();
}

// A weighted sum of one-element losses kept where they are computed: reading a GPU's value waits
// for all its queued work, so the loop reads the sum once per step, not once per micro-batch.
class LossSum {
 public:
  void add(const Tensor& loss, double weight) {
    if (!sum_.defined()) sum_ = Tensor::zeros(loss.shape(), loss.dtype(), loss.device());
    kernels::axpy(float(weight), loss, sum_);
  }
  // The sum so far (0 if nothing was added), and a fresh start.
  double take() {
    if (!sum_.defined()) return 0;
    const double v = sum_.item();
    sum_.zero_();
    return v;
  }

 private:
  Tensor sum_;
};

// Mean loss over the validation split's first `batches` micro-batches of every rank, summed in
// f64 from the per-token losses (as `spectra eval --task perplexity` sums them: the two agree).
double evaluate(const LM& lm, BatchSource& data, const Recipe& r, const dist::Group& dp) {
  ag::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t i = 0; i < r.eval.batches; i++) {
    TokenBatch b = data.val_batch(i);
    Device d = lm.device();
    Tensor tokens;
    lm.loss(b.ids.to(d), b.targets.to(d), b.batch, b.seq, &tokens);
    const std::vector<double> l = tokens.to_doubles(), t = b.targets.to_doubles();
    double batch_sum = 0;
    int64_t kept = 0;
    for (size_t j = 0; j < l.size(); j++)
      if (t[j] >= 0) {
        batch_sum += l[j];
        kept++;
      }
    sum += kept ? batch_sum / double(kept) : 0.0;
  }
  return mean_over(dp, sum / double(std::max<int64_t>(1, r.eval.batches)));
}

// eval.tasks, loaded before training so a bad task file stops the run at once.
struct TrainingTasks {
  std::vector<Task> tasks;
  std::unique_ptr<Tokenizer> tokenizer;
};

TrainingTasks load_training_tasks(const Recipe& r) {
  TrainingTasks t;
  if (r.eval.tasks.empty()) return t;
  if (r.data.tokenizer.empty())
    user_error(
        "{}: eval.tasks read text, so the recipe needs data.tokenizer (a byte-level model "
        "cannot be evaluated on them)",
        r.where("eval.tasks"));
  t.tokenizer = std::make_unique<Tokenizer>(check_tokenizer(r));
  for (const EvalTask& e : r.eval.tasks) {
    t.tasks.push_back(load_task(e.task, e.data, e.limit));
    add_fewshot(t.tasks.back(), e.fewshot_data, e.num_fewshot, kFewshotSeed,
                "give its fewshot_data in " + r.where("eval.tasks"));
    const int64_t budget = EvalOptions{}.max_gen_toks;
    if (t.tasks.back().type == TaskType::generate_until && r.model.context <= budget)
      user_error(
          "{}: {} generates up to {} tokens after its prompt (lm-eval's max_gen_toks), "
          "more than model.context {} leaves; evaluate it with `spectra eval "
          "--max-gen-toks N` instead",
          r.where("eval.tasks"), e.task, budget, r.model.context);
  }
  return t;
}

// Runs eval.tasks (documents split over the data-parallel ranks) and logs their metrics.
void evaluate_tasks(const LM& lm, const TrainingTasks& t, const Recipe& r, const dist::Group& dp,
                    int64_t step, MetricsLog& metrics) {
  EvalOptions o;
  o.batch = r.train.micro_batch;
  o.progress = false;
  o.group = &dp;
  for (const Task& task : t.tasks) {
    TaskResult res = evaluate(lm, t.tokenizer.get(), task, o);
    nlohmann::json j = {
        {"event", "eval_task"}, {"step", step}, {"task", task.name}, {"data", task.path}};
    std::string line;
    for (const auto& [name, value] : res.metrics) {
      j[name] = value;
      line += fmt::format(" {} {:.4f}", name, value);
    }
    metrics.write(j);
    log::info("step {}: {} ({} docs):{}", step, task.name, res.docs, line);
  }
}

std::string progress_line(int64_t step, int64_t steps, double loss, double lr, double gnorm,
                          double tok_s, double elapsed, double mfu) {
  std::string s =
      fmt::format("step {:>{}}/{} | loss {:.4f} | lr {:.2e} | gnorm {:.3f} | {} tok/s", step,
                  int(std::to_string(steps).size()), steps, loss, lr, gnorm, format_count(tok_s));
  if (mfu > 0) s += fmt::format(" | MFU {:.1f}%", 100 * mfu);
  if (cuda::available())
    s += fmt::format(" | mem {:.2f} GiB", cuda::peak_bytes_in_use() / 1073741824.0);
  return s + fmt::format(" | {} elapsed | ETA {}", format_duration(elapsed),
                         format_duration(eta_seconds(double(step), double(steps), elapsed)));
}

}  // namespace

TrainSummary train(const Recipe& r, const TrainOptions& opts) {
  dist::Topology topo = dist::Topology::create(r.parallel.tp, r.parallel.dp, r.path);
  if (topo.world.size() > 1) dist::start_watchdog(r.parallel.timeout_s);
  const int64_t accum =
      dist::accumulation_steps(r.train.global_batch, r.train.micro_batch, topo.dp);
  if (accum == 0)
    user_error(
        "{}: train.global_batch {} is not a multiple of train.micro_batch {} x {} data-parallel "
        "ranks",
        r.path, r.train.global_batch, r.train.micro_batch, topo.dp);
  const Placement place = resolve_placement(r);
  std::unique_ptr<BatchSource> data = make_batch_source(r, topo.dp_rank, topo.dp);
  const TrainingTasks tasks = load_training_tasks(r);

  // The model splits itself over the TP group; ranks of a TP group draw the same batches.
  TrainingModel built = build_training_model(r, place, &topo);
  LM& lm = *built.model;
  Optimizer& opt = *built.optimizer;
  const int zero = opt.data_parallel().zero();
  MetricsLog metrics(r.log.metrics, topo.world.rank());

  const ModelConfig& m = r.model;

  int64_t first_step = 0;
  if (!opts.resume.empty()) {
    // Rank 0 picks and verifies the checkpoint (the newest valid one for auto) and every rank
    // takes its choice: ranks never resume from different files, the file is checked once
    // (each rank then reads only its shards), and a bad file fails every rank with one line.
    std::optional<std::string> from = opts.resume;
    std::string error;
    if (topo.world.rank() == 0) {
      if (opts.resume == "auto")
        from = latest_checkpoint(r.checkpoint.dir);
      else
        error = checkpoint_refusal(opts.resume);
    }
    dist::fail_together(error);
    std::string pick = topo.world.broadcast(from.value_or(std::string()), 0);
    from = pick.empty() ? std::nullopt : std::optional<std::string>(pick);
    if (from) {
      TrainingState st = load_checkpoint(*from, r, lm, opt);
      data->restore(st.data_state);
      first_step = st.step;
      log::info("resumed from {} at step {}", *from, first_step);
    } else {
      log::info("no valid checkpoint in '{}': starting from step 0", r.checkpoint.dir);
    }
  }
  log::info(
      "training {} {} ({} parameters) on {} in {}: {} steps of {} sequences x {} tokens "
      "({} micro-batches of {})",
      model_kind_name(m.kind), r.path, format_count(double(m.parameter_count())),
      place.device.str(), r.train.precision, r.train.steps, r.train.global_batch, r.train.seq_len,
      accum, r.train.micro_batch);
  if (topo.world.size() > 1)
    log::info("{} ranks: tensor parallel {} x data parallel {}{}", topo.world.size(), topo.tp,
              topo.dp, zero ? fmt::format(", ZeRO-{}", zero) : "");
  // Checkpoints: the snapshot at the step boundary, the write on the writer's thread (waited for
  // at once without checkpoint.async). A failed write stops every rank at the next report.
  CheckpointWriter writer;
  auto report_written = [&](bool wait) {
    std::vector<std::string> written;
    std::string error = wait ? writer.wait(&written) : writer.poll(&written);
    dist::fail_together(error);  // every rank stops if rank 0 could not write
    for (const std::string& path : written) {
      log::info("checkpoint {} written", path);
      metrics.write({{"event", "checkpoint"}, {"step", checkpoint_step(path)}, {"path", path}});
    }
  };
  auto checkpoint = [&](int64_t steps_done) {
    opt.sync_weights();
    CheckpointSnapshot s =
        snapshot_checkpoint(r, lm, opt, {steps_done, data->state()}, topo.world.rank());
    if (topo.world.rank() == 0) writer.start(std::move(s));
    if (!r.checkpoint.async) report_written(true);  // synchronous: this step waits for the file
  };
  g_stop_signal = 0;
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);

  std::unique_ptr<GraphedMicroBatch> graphed;
  if (r.train.cuda_graph) {
    if (topo.world.size() > 1)
      throw UserError(
          fmt::format("{}: train.cuda_graph runs one process; this run has {} ranks "
                      "(--set train.cuda_graph=false)",
                      r.path, topo.world.size()));
    if (!place.device.is_cuda())
      throw UserError(
          fmt::format("{}: train.cuda_graph needs a GPU; train.device is {} "
                      "(--set train.cuda_graph=false)",
                      r.path, place.device.str()));
    graphed = std::make_unique<GraphedMicroBatch>(lm, 1.0 / double(accum));
    log::info("train.cuda_graph: the second micro-batch is captured, the rest replay it");
  }

  TrainSummary out;
  Stopwatch clock, interval_clock;
  double interval_loss = 0;
  int64_t interval_steps = 0;
  LossSum step_loss_sum;
  const double tokens_per_step = double(r.train.global_batch * r.train.seq_len);
  // The job's peak against its tokens/s: every rank brings one device's (on the CPU, ranks share
  // the cores and each measures its share when it starts).
  const double peak_flops =
      (r.log.peak_tflops > 0 ? 1e12 * r.log.peak_tflops
                             : kernels::peak_flops(place.device, place.compute_dtype)) *
      double(topo.world.size());
  if (peak_flops == 0)
    log::info("no peak FLOP/s known for {} ({}): MFU is not shown (log.peak_tflops states one)",
              place.device.str(), cuda::device_name(place.device.index));
  for (int64_t step = first_step; step < r.train.steps; step++) {
    dist::watchdog_step(step);
    double lr = lr_at(r.schedule, step, r.train.steps);
    double wd = weight_decay_at(r.schedule, step, r.train.steps);
    for (int64_t micro = 0; micro < accum; micro++) {
      opt.begin_micro_batch(micro + 1 == accum);
      TokenBatch b = data->next();
      if (graphed) {
        step_loss_sum.add(graphed->run(b), 1.0 / double(accum));
        continue;
      }
      ag::Var loss = lm.loss(b.ids.to(place.device), b.targets.to(place.device), b.batch, b.seq);
      step_loss_sum.add(loss.value(), 1.0 / double(accum));
      ag::backward(loss, opt.scaler().scale / double(accum));
    }
    StepStats st = opt.step(lr, wd);
    const double step_loss = mean_over(topo.dp_group, step_loss_sum.take());
    out.losses.push_back(step_loss);
    interval_loss += step_loss;
    interval_steps++;
    if (!std::isfinite(step_loss))
      throw Error(fmt::format("training diverged: loss is {} at step {}", step_loss, step + 1));

    bool last = step + 1 == r.train.steps;
    if ((r.log.interval > 0 && (step + 1) % r.log.interval == 0) || last) {
      double secs = interval_clock.seconds();
      double tok_s = double(interval_steps) * tokens_per_step / std::max(secs, 1e-9);
      double mfu =
          peak_flops > 0 ? tok_s * m.train_flops_per_token(r.train.seq_len) / peak_flops : 0;
      double mean_loss = interval_loss / double(interval_steps);
      if (log::rank() == 0)
        fmt::print("{}\n", progress_line(step + 1, r.train.steps, mean_loss, lr, st.grad_norm,
                                         tok_s, clock.seconds(), mfu));
      std::fflush(stdout);
      metrics.write({{"event", "train"},
                     {"step", step + 1},
                     {"loss", mean_loss},
                     {"lr", lr},
                     {"weight_decay", wd},
                     {"grad_norm", st.grad_norm},
                     {"tokens_per_s", tok_s},
                     {"mfu", mfu},
                     {"skipped", st.skipped},
                     {"elapsed_s", clock.seconds()}});
      out.tokens_per_second = tok_s;
      interval_loss = 0;
      interval_steps = 0;
      interval_clock.reset();
    }
    const bool save_now =
        !r.checkpoint.dir.empty() &&
        ((r.checkpoint.interval > 0 && (step + 1) % r.checkpoint.interval == 0) || last);
    if (save_now) {
      report_written(false);
      checkpoint(step + 1);
    }
    const bool stop_here = opts.stop_at > 0 && step + 1 == opts.stop_at && !last;
    if (topo.world.any(g_stop_signal != 0) || stop_here) {  // every rank stops at the same step
      if (!save_now && !r.checkpoint.dir.empty()) checkpoint(step + 1);
      report_written(true);
      log::info("stopping after step {} ({})", step + 1,
                stop_here ? "--stop-at" : fmt::format("signal {}", int(g_stop_signal)));
      out.steps = step + 1;
      out.stopped = true;
      return out;
    }
    if (r.eval.interval > 0 && (step + 1) % r.eval.interval == 0 && !last) {
      double v = evaluate(lm, *data, r, topo.dp_group);
      log::info("step {}: validation loss {:.4f}", step + 1, v);
      metrics.write({{"event", "eval"}, {"step", step + 1}, {"val_loss", v}});
      evaluate_tasks(lm, tasks, r, topo.dp_group, step + 1, metrics);
    }
  }
  out.steps = r.train.steps;
  report_written(true);
  opt.sync_weights();
  out.val_loss = evaluate(lm, *data, r, topo.dp_group);
  metrics.write({{"event", "eval"}, {"step", r.train.steps}, {"val_loss", out.val_loss}});
  evaluate_tasks(lm, tasks, r, topo.dp_group, r.train.steps, metrics);
  if (log::rank() == 0)
    fmt::print("validation loss {:.4f} nats/token ({:.3f} bits/byte) after {} in {}\n",
               out.val_loss, out.val_loss / std::log(2.0) / data->bytes_per_token(),
               format_count(double(r.train.steps) * tokens_per_step) + " tokens",
               format_duration(clock.seconds()));

  // Replicas are identical: the first TP group (ranks 0 .. tp-1) gathers, rank 0 writes. The
  // latent weights come from the optimizer: under ZeRO-3 they are shards (a gather over dp).
  const Tensor weights = r.train.out.empty() ? Tensor() : opt.full_weights();
  if (!r.train.out.empty() && topo.world.rank() < topo.tp) {
    save_model(r.train.out, lm, r, topo.world.rank() == 0, {}, weights);
    log::info("model written to {}", r.train.out);
  }
  const bool decodable = !r.data.text.empty() || !r.data.tokenizer.empty();
  if (r.eval.sample_tokens > 0 && !decodable)
    log::info("no sample: set data.tokenizer to decode the model's tokens");
  if (r.eval.sample_tokens > 0 && decodable && topo.tp > 1) {
    log::info("no sample under tensor parallelism: sample the model file (spectra generate)");
    return out;
  }
  if (r.eval.sample_tokens > 0 && decodable && log::rank() == 0) {
    SampleOptions so;
    so.tokens = r.eval.sample_tokens;
    so.seed = r.train.seed;
    std::unique_ptr<Tokenizer> tok;
    if (!r.data.tokenizer.empty()) tok = std::make_unique<Tokenizer>(check_tokenizer(r));
    out.sample = generate(lm, tok.get(), r.eval.prompt, so);
    fmt::print("sample: {}{}\n", r.eval.prompt, out.sample);
  }
  return out;
}

}  // namespace spectra
