#include "dist/sharded_weights.h"

#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/ternary.h"
#include "kernels/ternary_packed_cuda.h"

namespace spectra::dist {

namespace {

// The index of the parameter holding arena position x, in a list sorted by where they begin.
template <typename T, typename Begin>
size_t holding(const std::vector<T>& params, int64_t x, Begin begin_of) {
  auto it = std::upper_bound(params.begin(), params.end(), x,
                             [&](int64_t v, const T& p) { return v < begin_of(p); });
  SPECTRA_CHECK(it != params.begin(), "ShardedWeights: position {} before the arena", x);
  return size_t(it - params.begin()) - 1;
}

}  // namespace

std::vector<int64_t> split_rows(int64_t begin, int64_t end, int parts,
                                const std::vector<ArenaParam>& params) {
  std::vector<int64_t> counts;
  int64_t prev = begin;
  for (int r = 1; r <= parts; r++) {
    int64_t cut = end;
    if (r < parts) {
      const int64_t target = begin + (end - begin) * r / parts;
      if (target < end) {  // up to the next row boundary
        const ArenaParam& p =
            params[holding(params, target, [](const ArenaParam& q) { return q.begin; })];
        const int64_t row = p.row_length();
        cut = std::min(end, p.begin + (target - p.begin + row - 1) / row * row);
      }
      cut = std::max(cut, prev);
    }
    counts.push_back(cut - prev);
    prev = cut;
  }
  return counts;
}

ShardedWeights::ShardedWeights(const std::vector<ArenaParam>& params, std::vector<Bucket> buckets,
                               int rank, float eps, const Tensor& float_weights)
    : buckets_(std::move(buckets)), rank_(rank), eps_(eps) {
  int64_t bytes = 0;
  for (const ArenaParam& p : params) {
    ParamState s;
    s.p = p;
    s.byte_base = bytes = (bytes + 15) / 16 * 16;  // aligned for any dtype's view
    s.gamma_base = groups_;
    int64_t size = 0;
    if (p.ternary) {
      s.packed.cols = p.row_length();
      s.packed.rows = (p.end - p.begin) / s.packed.cols;
      s.packed.groups = p.groups;
      s.packed.axis = p.axis;
      code_bytes_ += size = s.packed.rows * s.packed.row_bytes();
      groups_ += p.groups;
    } else {
      SPECTRA_CHECK(is_floating(p.dtype), "ShardedWeights: float parameter in {}",
                    dtype_name(p.dtype));
      float_bytes_ += size = (p.end - p.begin) * int64_t(dtype_size(p.dtype));
    }
    bytes += size;
    param_.push_back(std::move(s));
  }
  // The replicated buffer lives where the model computes (the initial weights' device).
  const Device dev = float_weights.device();
  wire_ = Tensor::zeros({bytes}, DType::u8, dev);
  gamma_ = Tensor::zeros({groups_}, DType::f32, dev);
  for (size_t k = 0; k < param_.size(); k++) {
    ParamState& s = param_[k];
    if (s.p.ternary) {
      kernels::PackedTernary& t = s.packed;
      t.codes = wire_.slice(s.byte_base, s.byte_base + t.rows * t.row_bytes())
                    .view({t.rows, t.row_bytes()});
      t.gamma = gamma_.slice(s.gamma_base, s.gamma_base + t.groups);
    } else {
      Tensor out = floats(k);
      kernels::cast(float_weights.slice(s.p.begin, s.p.end), out);
    }
  }
  // This rank's pieces: each parameter's overlap with each of its parts, and where it lies in
  // the shard (the parts one after another).
  for (const Bucket& b : buckets_) {
    int64_t begin = b.begin;
    for (int r = 0; r < rank_; r++) begin += b.counts[size_t(r)];
    const int64_t end = begin + b.counts[size_t(rank_)];
    for (size_t k = begin < end ? param_at(begin) : param_.size();
         k < param_.size() && param_[k].p.begin < end; k++) {
      const int64_t a = std::max(begin, param_[k].p.begin), e = std::min(end, param_[k].p.end);
      pieces_.push_back({k, a, e, shard_ + a - begin});
    }
    shard_ += end - begin;
  }
  for (const Bucket& b : buckets_) {
    BucketState s;
    s.byte_begin = bytes_before(b.begin);
    s.byte_end = bytes_before(b.end);
    int64_t at = b.begin;
    for (int64_t c : b.counts) {
      s.byte_counts.push_back(bytes_before(at + c) - bytes_before(at));
      at += c;
    }
    bucket_.push_back(std::move(s));
  }
}

size_t ShardedWeights::param_at(int64_t x) const {
  return holding(param_, x, [](const ParamState& s) { return s.p.begin; });
}

int64_t ShardedWeights::bytes_before(int64_t x) const {
  if (x >= param_.back().p.end) return wire_.numel();
  const ParamState& s = param_[param_at(x)];
  const int64_t offset = x - s.p.begin;
  if (!s.p.ternary) return s.byte_base + offset * int64_t(dtype_size(s.p.dtype));
  SPECTRA_CHECK(offset % s.packed.cols == 0, "ShardedWeights: position {} cuts a row", x);
  return s.byte_base + offset / s.packed.cols * s.packed.row_bytes();
}

Tensor ShardedWeights::bucket_bytes(size_t i) const {
  return wire_.slice(bucket_[i].byte_begin, bucket_[i].byte_end);
}

Tensor ShardedWeights::floats(size_t k) const {
  const ParamState& s = param_[k];
  SPECTRA_CHECK(!s.p.ternary, "ShardedWeights::floats: parameter {} travels as codes", k);
  const int64_t n = (s.p.end - s.p.begin) * int64_t(dtype_size(s.p.dtype));
  return wire_.slice(s.byte_base, s.byte_base + n).reinterpret(s.p.dtype);
}

std::pair<int64_t, int64_t> ShardedWeights::rows_of(const Piece& c) const {
  const ParamState& s = param_[c.param];
  return {(c.begin - s.p.begin) / s.packed.cols, (c.end - s.p.begin) / s.packed.cols};
}

Tensor ShardedWeights::abs_sums(const Tensor& latent) const {
  check_shard(latent);
  Tensor sums = Tensor::zeros({groups_}, DType::f64);  // on the host: the all-gather is MPI's
  for (const Piece& c : pieces_) {
    const ParamState& s = param_[c.param];
    if (!s.p.ternary) continue;
    auto [r0, r1] = rows_of(c);
    double* out = sums.data<double>() + s.gamma_base;
    if (!latent.is_cuda()) {
      kernels::ternary_abs_sums(latent.data<float>() + c.local, r0, r1, s.packed, out);
      continue;
    }
#ifdef SPECTRA_WITH_CUDA
    // Each row's sums on the GPU, added here in row order as kernels::ternary_abs_sums adds
    // them (every rank of a GPU run adds the same way).
    const int64_t blocks = s.packed.axis == 1 ? s.packed.groups : 1;
    Tensor rows = Tensor::empty({(r1 - r0) * blocks}, DType::f64, latent.device());
    kernels::ternary_row_abs_sums_cuda(latent.slice(c.local, c.end - c.begin + c.local), r0, r1,
                                       s.packed, rows);
    const std::vector<double> part = rows.to_doubles();
    for (int64_t r = r0; r < r1; r++)
      for (int64_t b = 0; b < blocks; b++)
        out[s.packed.axis == 1 ? b : s.packed.block_of_row(r)] +=
            part[size_t((r - r0) * blocks + b)];
#endif
  }
  return sums;
}

void ShardedWeights::set_gammas(const Tensor& all_sums) {
  const int64_t ranks = groups_ > 0 ? all_sums.numel() / groups_ : 0;
  SPECTRA_CHECK(all_sums.dtype() == DType::f64 && all_sums.numel() == ranks * groups_,
                "ShardedWeights::set_gammas: {} for {} scale blocks", all_sums.str(), groups_);
  const double* sums = all_sums.data<double>();
  Tensor gamma = Tensor::empty({groups_});  // computed on the host, then where the codes are
  for (const ParamState& s : param_) {
    if (!s.p.ternary) continue;
    const int64_t count = s.packed.rows * s.packed.cols / s.packed.groups;
    for (int64_t g = 0; g < s.packed.groups; g++) {
      double total = 0;  // in rank order: every rank adds the same numbers the same way
      for (int64_t r = 0; r < ranks; r++) total += sums[r * groups_ + s.gamma_base + g];
      gamma.data<float>()[s.gamma_base + g] = kernels::ternary_gamma(total, count, eps_);
    }
  }
  gamma_.copy_from(gamma);
}

void ShardedWeights::encode(const Tensor& latent) {
  check_shard(latent);
  for (const Piece& c : pieces_) {
    ParamState& s = param_[c.param];
    const Tensor w = latent.slice(c.local, c.local + c.end - c.begin);
    if (!s.p.ternary) {  // cast by its owner: the wire carries what the passes read
      Tensor out = floats(c.param).slice(c.begin - s.p.begin, c.end - s.p.begin);
      kernels::cast(w, out);
      continue;
    }
    auto [r0, r1] = rows_of(c);
    if (!latent.is_cuda()) {
      kernels::pack_ternary_rows(w.data<float>(), r0, r1, s.packed);
      continue;
    }
#ifdef SPECTRA_WITH_CUDA
    kernels::pack_ternary_rows_cuda(w, r0, r1, s.packed);
#endif
  }
}

void ShardedWeights::check_shard(const Tensor& latent) const {
  SPECTRA_CHECK(
      latent.device() == wire_.device() && latent.dtype() == DType::f32 && latent.numel() == shard_,
      "ShardedWeights: the latent shard must be f32 [{}] on {}, got {}", shard_,
      wire_.device().str(), latent.str());
}

}  // namespace spectra::dist
