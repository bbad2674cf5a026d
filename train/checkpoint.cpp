#include "train/checkpoint.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libdeflate.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <regex>
#include <thread>
#include <utility>

#include "core/log.h"
#include "data/hdf5.h"
#include "train/model_file.h"

namespace spectra {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "spectra-checkpoint";
constexpr int64_t kVersion = 1;
const char* const kGroups[] = {"params", "adam_m", "adam_v"};

// CRC-32 (zlib's polynomial) of a tensor's bytes: 64 MiB pieces checksummed in parallel by
// libdeflate, joined in order with zlib's crc32_combine (the same value as one pass).
uint32_t crc_of(const Tensor& t) {
  constexpr size_t kPiece = size_t(64) << 20;
  const auto* p = static_cast<const unsigned char*>(t.raw());
  const size_t n = t.nbytes(), pieces = std::max<size_t>(1, (n + kPiece - 1) / kPiece);
  std::vector<uint32_t> crc(pieces);
#pragma omp parallel for schedule(static) if (pieces > 1)
  for (size_t i = 0; i < pieces; i++)
    crc[i] = libdeflate_crc32(0, p + i * kPiece, std::min(kPiece, n - std::min(n, i * kPiece)));
  uLong c = crc[0];
  for (size_t i = 1; i < pieces; i++)
    c = crc32_combine(c, crc[i], z_off_t(std::min(kPiece, n - i * kPiece)));
  return uint32_t(c);
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

int64_t step_of(const fs::path& p) {
  static const std::regex re(R"(step-(\d+)\.h5)");
  std::smatch m;
  std::string name = p.filename().string();
  return std::regex_match(name, m, re) ? std::stoll(m[1]) : -1;
}

// Every parameter's master, m and v as full host tensors that no training step will change
// (copies where the gather did not already make one), one parameter at a time, passed to
// `take` (null on the ranks that only help gather). `state`: the weights, m and v over this
// rank's whole arena. Collective over the model's TP group.
void gather_parameters(const LM& model, const Tensor (&state)[3],
                       const std::function<void(const std::string&, Tensor (&)[3])>& take) {
  const dist::Group* tp = model.tp_group();
  Tensor host[3];
  for (int k = 0; k < 3; k++) host[k] = state[k].is_cuda() ? state[k].to(Device::cpu()) : state[k];
  int64_t off = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    Tensor live[3], parts[3];
    for (int k = 0; k < 3; k++) {
      live[k] = state[k].slice(off, off + n);
      parts[k] = full_tensor(*p, host[k].slice(off, off + n).view(p->shape), tp);
      if (take && parts[k].raw() == live[k].raw()) parts[k] = parts[k].clone();
    }
    if (take) take(name, parts);
    off += n;
  }
}

// Tests stretch a write with SPECTRA_CHECKPOINT_WRITE_DELAY_MS (a pause before each dataset), so
// that a kill lands inside the background write.
void test_delay() {
  static const int ms = [] {
    const char* v = std::getenv("SPECTRA_CHECKPOINT_WRITE_DELAY_MS");
    return v ? std::atoi(v) : 0;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

int64_t checkpoint_step(const std::string& path) { return step_of(path); }

bool is_checkpoint_file(const std::string& path) {
  try {
    h5::File f = h5::File::open_read(path);
    return f.has_attr("format") && f.attr_string("format") == kFormat;
  } catch (const UserError&) {
    return false;
  }
}

CheckpointSnapshot snapshot_checkpoint(const Recipe& r, const LM& model, const Optimizer& opt,
                                       const TrainingState& st, int world_rank) {
  // Collective part first (every rank): gather the ZeRO shards to dp rank 0.
  const Tensor state[3] = {opt.full_weights(), opt.full_moment(0), opt.full_moment(1)};
  CheckpointSnapshot s;
  s.dir = r.checkpoint.dir;
  s.path = (fs::path(s.dir) / fmt::format("step-{:08}.h5", st.step)).string();
  // Rank 0 keeps the state; the rest of its TP group (ranks 0 .. tp-1) gathers split tensors.
  const dist::Group* tp = model.tp_group();
  if (world_rank != 0) {
    if (tp && world_rank < tp->size()) gather_parameters(model, state, nullptr);
    return s;
  }
  s.keep = std::max(r.checkpoint.keep, 1);
  s.recipe_text = r.text;
  s.data_state = st.data_state;
  s.step = st.step;
  s.adam_step = opt.steps_taken();
  s.loss_scale_log2 = int64_t(std::lround(std::log2(opt.scaler().scale)));  // a power of 2
  s.loss_scale_clean_steps = opt.scaler().clean_steps;
  gather_parameters(model, state, [&](const std::string& name, Tensor(&parts)[3]) {
    s.tensors.push_back({name, {parts[0], parts[1], parts[2]}});
  });
  return s;
}

void write_checkpoint(const CheckpointSnapshot& s) {
  fs::create_directories(s.dir);
  for (const auto& e : fs::directory_iterator(s.dir))  // a write a crash interrupted earlier
    if (e.path().extension() == ".tmp") fs::remove(e.path());
  const std::string tmp = s.path + ".tmp";
  {
    h5::File f = h5::File::create(tmp);
    f.set_attr("format", std::string(kFormat));
    f.set_attr("format_version", kVersion);
    f.set_attr("spectra_version", std::string(SPECTRA_VERSION_STRING));
    f.set_attr("recipe", s.recipe_text);
    f.set_attr("step", s.step);
    f.set_attr("adam_step", s.adam_step);
    f.set_attr("loss_scale_log2", s.loss_scale_log2);
    f.set_attr("loss_scale_clean_steps", s.loss_scale_clean_steps);
    f.set_attr("data_state", s.data_state);
    for (const char* g : kGroups) f.create_group(g);
    for (const CheckpointSnapshot::Entry& e : s.tensors)
      for (int k = 0; k < 3; k++) {
        test_delay();
        std::string ds = std::string(kGroups[k]) + "/" + e.name;
        f.write(ds, e.parts[k]);
        f.set_attr("crc32", int64_t(crc_of(e.parts[k])), ds);
      }
    f.close();
  }
  if (std::string bad = verify_checkpoint(tmp); !bad.empty())
    throw Error(fmt::format("checkpoint {} failed verification after writing: {}", tmp, bad));
  fsync_path(tmp);
  fs::rename(tmp, s.path);  // atomic: readers see the old set or the complete new file
  fsync_path(s.dir);

  // Keep the newest `keep`.
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(s.dir))
    if (step_of(e.path()) >= 0) all.push_back(e.path());
  std::sort(all.begin(), all.end(),
            [](const fs::path& a, const fs::path& b) { return step_of(a) > step_of(b); });
  for (size_t i = size_t(s.keep); i < all.size(); i++) fs::remove(all[i]);
}

std::string save_checkpoint(const Recipe& r, const LM& model, const Optimizer& opt,
                            const TrainingState& st, int world_rank) {
  CheckpointSnapshot s = snapshot_checkpoint(r, model, opt, st, world_rank);
  if (world_rank == 0) write_checkpoint(s);
  return s.path;
}

// ---- background writes ----------------------------------------------------------------------

struct CheckpointWriter::State {
  std::thread thread;
  std::mutex mu;
  std::vector<std::string> written;
  std::string error;
};

CheckpointWriter::~CheckpointWriter() {
  std::vector<std::string> ignored;
  wait(&ignored);
}

void CheckpointWriter::start(CheckpointSnapshot s) {
  if (!state_) state_ = std::make_shared<State>();
  if (state_->thread.joinable()) state_->thread.join();  // one write at a time
  state_->thread = std::thread([st = state_, snap = std::move(s)] {
    std::string error;
    try {
      write_checkpoint(snap);
    } catch (const std::exception& e) {
      error = fmt::format("writing checkpoint {}: {}", snap.path, e.what());
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (error.empty())
      st->written.push_back(snap.path);
    else if (st->error.empty())
      st->error = error;
  });
}

std::string CheckpointWriter::poll(std::vector<std::string>* written) {
  if (!state_) return "";
  std::lock_guard<std::mutex> lock(state_->mu);
  written->insert(written->end(), state_->written.begin(), state_->written.end());
  state_->written.clear();
  return std::exchange(state_->error, std::string());
}

std::string CheckpointWriter::wait(std::vector<std::string>* written) {
  if (state_ && state_->thread.joinable()) state_->thread.join();
  return poll(written);
}

std::string verify_checkpoint(const std::string& path) {
  try {
    h5::File f = h5::File::open_read(path);
    if (!f.has_attr("format") || f.attr_string("format") != kFormat)
      return "not a spectra checkpoint";
    if (f.attr_int("format_version") != kVersion)
      return fmt::format("checkpoint format version {} (this spectra reads {})",
                         f.attr_int("format_version"), kVersion);
    for (const char* k : {"recipe", "data_state", "spectra_version"}) f.attr_string(k);
    for (const char* k : {"step", "adam_step", "loss_scale_log2", "loss_scale_clean_steps"})
      f.attr_int(k);
    std::vector<std::string> names = f.list("params");
    if (names.empty()) return "no parameters";
    Tensor buf;  // one buffer for every dataset: no allocation per tensor
    for (const char* g : kGroups) {
      if (f.list(g) != names)
        return fmt::format("group '{}' does not list the same tensors as 'params'", g);
      for (const std::string& n : names) {
        std::string ds = std::string(g) + "/" + n;
        if (f.dtype_of(ds) != DType::f32) return fmt::format("'{}' is not f32", ds);
        int64_t numel = shape_numel(f.shape_of(ds));
        if (!buf.defined() || buf.numel() < numel) buf = Tensor::empty({numel});
        Tensor view = buf.slice(0, numel);
        f.read_into(ds, view);
        if (int64_t(crc_of(view)) != f.attr_int("crc32", ds))
          return fmt::format("checksum mismatch in '{}'", ds);
      }
    }
    return "";
  } catch (const UserError& e) {
    return e.what();
  }
}

std::string checkpoint_refusal(const std::string& path) {
  std::string bad = verify_checkpoint(path);
  if (bad.empty()) return bad;
  if (bad.rfind(path + ": ", 0) == 0) bad = bad.substr(path.size() + 2);  // h5 names the file too
  return fmt::format("{}: refusing checkpoint: {}", path, bad);
}

TrainingState load_checkpoint(const std::string& path, const Recipe& r, LM& model, Optimizer& opt) {
  if (!is_checkpoint_file(path)) user_error("{}", checkpoint_refusal(path));
  h5::File f = h5::File::open_read(path);
  Recipe saved = parse_recipe(f.attr_string("recipe"), path + ":recipe");
  check_model_fits(path, saved.model, r.model, false, "resume with the recipe that wrote it");
  const int64_t arena = model.parameter_elements();
  Tensor m = Tensor::zeros({arena}), v = Tensor::zeros({arena});
  int64_t off = 0;
  // Each dataset is read once, straight into its place, and its checksum checked there.
  Tensor w = Tensor::empty({arena});
  // A split parameter's block is read alone (hyperslab): each rank reads its share of the file,
  // not all of it. Its checksum covers the whole tensor, so such a file is verified beforehand
  // (the trainer has rank 0 do it); whole tensors are checked here.
  for (auto& [name, p] : model.named_parameters()) {
    const int64_t n = shape_numel(p->shape);
    const Split& split = p->split;
    Tensor dst[3] = {w.slice(off, off + n), m.slice(off, off + n), v.slice(off, off + n)};
    for (int k = 0; k < 3; k++) {
      const std::string ds = std::string(kGroups[k]) + "/" + name;
      if (!f.exists(ds)) user_error("{}: refusing checkpoint: missing '{}'", path, ds);
      check_stored_parameter(path, ds, f.shape_of(ds), f.dtype_of(ds), p->full);
      if (split.parts > 1) {
        const int64_t count = p->shape[size_t(split.axis)];
        Tensor block = dst[k].view(p->shape);
        f.read_block(ds, split.axis, int64_t(split.index) * count, count, block);
        continue;
      }
      f.read_into(ds, dst[k]);
      if (int64_t(crc_of(dst[k])) != f.attr_int("crc32", ds))
        user_error("{}: refusing checkpoint: checksum mismatch in '{}' (corrupt file)", path, ds);
    }
    off += n;
  }
  LossScaler s = opt.scaler();
  s.scale = std::ldexp(1.0, int(f.attr_int("loss_scale_log2")));
  s.clean_steps = f.attr_int("loss_scale_clean_steps");
  opt.restore(w, m, v, f.attr_int("adam_step"), s);
  return {f.attr_int("step"), f.attr_string("data_state")};
}

std::optional<std::string> latest_checkpoint(const std::string& dir) {
  if (dir.empty() || !fs::exists(dir)) return std::nullopt;
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dir))
    if (step_of(e.path()) >= 0) all.push_back(e.path());
  std::sort(all.begin(), all.end(),
            [](const fs::path& a, const fs::path& b) { return step_of(a) > step_of(b); });
  for (const fs::path& p : all) {
    std::string bad = verify_checkpoint(p.string());
    if (bad.empty()) return p.string();
    log::warn("skipping checkpoint {}: {}", p.string(), bad);
  }
  return std::nullopt;
}

std::string describe_checkpoint(const std::string& path) {
  std::string bad = verify_checkpoint(path);
  if (!bad.empty()) user_error("{}: {}", path, bad);
  h5::File f = h5::File::open_read(path);
  Recipe r = parse_recipe(f.attr_string("recipe"), path + ":recipe");
  int64_t params = 0;
  for (const std::string& n : f.list("params")) params += shape_numel(f.shape_of("params/" + n));
  return fmt::format(
      "checkpoint {}\n  verified: every dataset's crc32 matches\n  written by spectra {}\n"
      "  model: {} {}, {} parameters in {} tensors\n  step {} of {} (AdamW step {}), loss scale "
      "{}\n"
      "  data state: {}\n",
      path, f.attr_string("spectra_version"), model_kind_name(r.model.kind), r.size, params,
      f.list("params").size(), f.attr_int("step"), r.train.steps, f.attr_int("adam_step"),
      std::ldexp(1.0, int(f.attr_int("loss_scale_log2"))), f.attr_string("data_state"));
}

}  // namespace spectra
