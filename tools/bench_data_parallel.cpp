// spectra bench --data-parallel (under mpirun): how much of the gradient communication the
// backward pass hides. The same model and batches run in one process per rank, steps
// alternating between every collective blocking where it starts (nothing hidden, as when
// reducing after the whole backward pass) and overlapped (dist/data_parallel.h); for each it
// prints the step time split forward / backward / optimizer and the communication time the step
// still waited for, the slowest rank's, and the fraction hidden; then the bytes a rank put into
// each kind of collective per step (dist::Traffic) and per parameter, the peak memory of the
// largest rank, and under ZeRO-3 what its weights weigh on the wire (codes and floats).
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "core/cuda_runtime.h"
#include "core/progress.h"
#include "core/rng.h"
#include "dist/topology.h"
#include "kernels/ternary_packed.h"
#include "tools/bench.h"
#include "train/training_model.h"

namespace spectra::tools {

namespace {

struct Timing {
  double forward = 0, backward = 0, optimizer = 0, exposed = 0;
  double step() const { return forward + backward + optimizer; }
};

void sync(Device d) {
  if (d.is_cuda()) cuda::synchronize();
}

// The slowest rank's figures: a step ends when its last rank ends.
Timing slowest(const dist::Group& world, Timing t) {
  Tensor v = Tensor::from(std::vector<double>{t.forward, t.backward, t.optimizer, t.exposed}, {4});
  world.all_reduce(v, dist::ReduceOp::max);
  const double* p = v.data<double>();
  return {p[0], p[1], p[2], p[3]};
}

// ZeRO-3's self-check after the steps: the codes and γ each rank rebuilt from the all-gathers,
// against one process's packing (kernels::pack_ternary, the training quantizer's γ summed in one
// fixed order) of the latent weights they came from. Every rank of the dp group holds the same
// bytes (a hash, all-reduced); on dp rank 0 they equal pack_ternary's wherever γ agrees.
struct CodesCheck {
  int64_t projections = 0, gamma_equal = 0, codes_equal = 0;
  bool ranks_agree = true;
};
CodesCheck check_codes(const LM& lm, Optimizer& opt, const dist::Group& dp) {
  CodesCheck c;
  const dist::ShardedWeights* w = opt.data_parallel().sharded_weights();
  if (!w) return c;
  opt.sync_weights();
  uint64_t h = 0;
  size_t k = 0;
  for (auto& [name, p] : lm.named_parameters()) {
    if (p->ternary)
      for (const Tensor* t : {&w->packed(k).codes, &w->packed(k).gamma})
        h = hash_name({static_cast<const char*>(t->raw()), t->nbytes()}, h);
    k++;
  }
  Tensor agree = Tensor::from(std::vector<int64_t>{int64_t(h >> 1), -int64_t(h >> 1)}, {2});
  dp.all_reduce(agree, dist::ReduceOp::max);
  c.ranks_agree = agree.data<int64_t>()[0] == -agree.data<int64_t>()[1];
  const Tensor latent = opt.full_weights();  // collective over dp; on dp rank 0
  if (dp.rank() != 0) return c;
  int64_t off = 0;
  k = 0;
  for (auto& [name, p] : lm.named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    if (p->ternary) {
      const kernels::PackedTernary want =
          kernels::pack_ternary(latent.slice(off, off + n).view(p->shape), lm.config().ternary_eps,
                                p->scales.groups, p->scales.axis);
      const kernels::PackedTernary& got = w->packed(k);
      c.projections++;
      if (std::memcmp(want.gamma.raw(), got.gamma.raw(), want.gamma.nbytes()) == 0) {
        c.gamma_equal++;
        c.codes_equal += std::memcmp(want.codes.raw(), got.codes.raw(), want.codes.nbytes()) == 0;
      }
    }
    off += n;
    k++;
  }
  return c;
}

}  // namespace

void bench_data_parallel(const std::string& path, const std::vector<std::string>& overrides,
                         int64_t steps, int64_t warmup, bool json) {
  Recipe r = load_recipe(path, overrides);
  dist::Topology topo = dist::Topology::create(r.parallel.tp, r.parallel.dp, r.path);
  if (topo.dp < 2)
    user_error("bench --data-parallel needs at least 2 data-parallel ranks (run it under mpirun)");
  const Placement place = resolve_placement(r);
  TrainingModel built = build_training_model(r, place, &topo);
  LM& lm = *built.model;
  Optimizer& opt = *built.optimizer;
  const int64_t b = r.train.micro_batch, t = r.train.seq_len;
  std::vector<int32_t> ids(size_t(b * t)), tg(size_t(b * t));
  Rng rng{r.train.seed, uint64_t(topo.dp_rank) + 1};  // each replica its own batch
  for (size_t i = 0; i < ids.size(); i++) {
    ids[i] = int32_t(rng.below(uint64_t(r.model.vocab_size)));
    tg[i] = int32_t(rng.below(uint64_t(r.model.vocab_size)));
  }
  Tensor x = Tensor::from(ids, {b * t}).to(place.device);
  Tensor y = Tensor::from(tg, {b * t}).to(place.device);

  // Blocking and overlapped steps alternate, so both see the same machine.
  const int zero = opt.data_parallel().zero();
  double gradient_bytes = 0;
  Timing sum[2];
  dist::Traffic before;
  for (int64_t s = 0; s < warmup + steps; s++)
    for (int overlap = 0; overlap < 2; overlap++) {
      if (s == warmup && overlap == 0) before = dist::traffic();
      opt.data_parallel().set_overlap(overlap == 1);
      topo.world.barrier();
      Stopwatch w;
      opt.begin_micro_batch(true);
      ag::Var loss = lm.loss(x, y, b, t);
      sync(place.device);
      const double f = w.seconds();
      ag::backward(loss, opt.scaler().scale);
      sync(place.device);
      const double bw = w.seconds();
      opt.step(1e-5, 0.0);
      opt.sync_weights();
      sync(place.device);
      const double o = w.seconds();
      const dist::DataParallel::CommTime c = opt.data_parallel().take_comm_time();
      if (s < warmup) continue;
      Timing& m = sum[overlap];
      m.forward += f / double(steps);
      m.backward += (bw - f) / double(steps);
      m.optimizer += (o - bw) / double(steps);
      m.exposed += c.exposed_s / double(steps);
      gradient_bytes = c.bytes;
    }
  // What the ranks put into collectives over the 2·steps steps (dist::Traffic: each its own part
  // of each payload), as a mean per rank: ZeRO-3's parts are even in elements, not in bytes.
  const dist::Traffic mine = dist::traffic() - before;
  const CodesCheck codes_check = check_codes(lm, opt, topo.dp_group);
  Tensor traffic = Tensor::empty({dist::kCollectives}, DType::f64);
  for (int k = 0; k < dist::kCollectives; k++) traffic.data<double>()[k] = double(mine.bytes[k]);
  topo.world.all_reduce(traffic);
  Tensor peak =
      Tensor::from(std::vector<double>{double(place.device.is_cuda() ? cuda::peak_bytes_in_use()
                                                                     : host_peak_bytes_in_use())},
                   {1});
  topo.world.all_reduce(peak, dist::ReduceOp::max);
  const Timing blocking = slowest(topo.world, sum[0]), overlapped = slowest(topo.world, sum[1]);
  if (topo.world.rank() != 0) return;
  const double hidden = blocking.exposed > 0 ? 1 - overlapped.exposed / blocking.exposed : 0;
  fmt::print(
      "{}: {} parameters, dp {} x tp {}, ZeRO-{}, buckets of >= {:g} MiB, {:.1f} MB of gradients "
      "reduced per step, {} on {}, micro-batch {} x {}\n",
      path, format_count(double(r.model.parameter_count())), topo.dp, topo.tp, zero,
      r.parallel.bucket_mb, gradient_bytes / 1e6, r.train.precision, place.device.str(), b, t);
  fmt::print("{:<12} {:>9} {:>9} {:>9} {:>9} {:>14} {:>8}\n", "reduce", "step ms", "fwd ms",
             "bwd ms", "opt ms", "comm waited ms", "hidden");
  auto row = [&](const char* name, const Timing& tm, double h) {
    fmt::print("{:<12} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>14.1f} {:>7.0f}%\n", name,
               1e3 * tm.step(), 1e3 * tm.forward, 1e3 * tm.backward, 1e3 * tm.optimizer,
               1e3 * tm.exposed, 100 * h);
  };
  row("blocking", blocking, 0);
  row("overlapped", overlapped, hidden);
  fmt::print("step time overlapped / blocking: {:.3f}\n", overlapped.step() / blocking.step());
  const double per_step = 1.0 / double(2 * steps), params = double(r.model.parameter_count());
  nlohmann::json bytes_per_step;
  fmt::print("{:<16} {:>14} {:>16} {:>12}\n", "collective", "MB per step", "bytes per param",
             "calls/step");
  for (int k = 0; k < dist::kCollectives; k++) {
    const double b = traffic.data<double>()[k] / topo.world.size() * per_step;
    bytes_per_step[dist::collective_name(dist::Collective(k))] = b;
    if (mine.calls[k] == 0) continue;
    fmt::print("{:<16} {:>14.3f} {:>16.4f} {:>12.1f}\n", dist::collective_name(dist::Collective(k)),
               b / 1e6, b / params, double(mine.calls[k]) * per_step);
  }
  fmt::print("peak memory per rank (the largest): {:.1f} MB\n", peak.data<double>()[0] / 1e6);
  // ZeRO-3's replicated weights: the projections as codes, the rest as the passes read it (f32
  // on the CPU), all of it what the ranks together all-gather each step (ZeRO-1/2 gather 4 bytes
  // for every parameter).
  nlohmann::json wire;
  if (const dist::ShardedWeights* w = opt.data_parallel().sharded_weights()) {
    int64_t ternary = 0;
    for (auto& [name, p] : lm.named_parameters())
      if (p->ternary) ternary += shape_numel(p->shape);
    const double codes = double(w->code_bytes()), floats = double(w->float_bytes());
    fmt::print(
        "ZeRO-3 weights all-gathered per step (all ranks): {:.3f} MB of codes for {} projection "
        "weights ({:.3f} bits each: {:.4f} of their f32 bytes) + {:.3f} MB of floats for the other "
        "{}; in all {:.4f} of ZeRO-2's f32 all-gather\n",
        codes / 1e6, format_count(double(ternary)), 8 * codes / double(ternary),
        codes / (4 * double(ternary)), floats / 1e6, format_count(params - double(ternary)),
        (codes + floats) / (4 * params));
    fmt::print(
        "ZeRO-3 self-check: every rank's codes and γ {}; γ equal to one process's in {} "
        "of {} projections, their codes equal to one process's packing in {}\n",
        codes_check.ranks_agree ? "agree" : "DIFFER", codes_check.gamma_equal,
        codes_check.projections, codes_check.codes_equal);
    wire = {{"code_bytes", codes},
            {"float_bytes", floats},
            {"ternary_parameters", ternary},
            {"ranks_agree", codes_check.ranks_agree},
            {"projections", codes_check.projections},
            {"gamma_equal", codes_check.gamma_equal},
            {"codes_equal", codes_check.codes_equal}};
  }
  if (json)
    fmt::print("json: {}\n", nlohmann::json{{"recipe", path},
                                            {"dp", topo.dp},
                                            {"zero", zero},
                                            {"blocking_step_ms", 1e3 * blocking.step()},
                                            {"overlapped_step_ms", 1e3 * overlapped.step()},
                                            {"blocking_comm_ms", 1e3 * blocking.exposed},
                                            {"overlapped_comm_ms", 1e3 * overlapped.exposed},
                                            {"hidden", hidden},
                                            {"bytes_per_step", bytes_per_step},
                                            {"parameters", r.model.parameter_count()},
                                            {"peak_bytes_per_rank", peak.data<double>()[0]},
                                            {"zero3_weights", wire}}
                                 .dump());
  std::fflush(stdout);
}

}  // namespace spectra::tools
