#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/tensor.h"
#include "eval/python_random.h"

namespace spectra {

DocValues::DocValues(size_t docs, std::vector<std::string> columns)
    : docs_(docs), columns_(std::move(columns)), values_(docs * columns_.size(), 0.0) {}

size_t DocValues::index(const std::string& column) const {
  auto it = std::find(columns_.begin(), columns_.end(), column);
  SPECTRA_CHECK(it != columns_.end(), "no per-document column '{}'", column);
  return size_t(it - columns_.begin());
}

double& DocValues::at(size_t doc, const std::string& column) {
  return values_[doc * columns_.size() + index(column)];
}

std::vector<double> DocValues::column(const std::string& name) const {
  const size_t c = index(name);
  std::vector<double> out(docs_);
  for (size_t d = 0; d < docs_; d++) out[d] = values_[d * columns_.size() + c];
  return out;
}

void DocValues::all_reduce(const dist::Group* group) {
  if (!group || group->size() == 1 || values_.empty()) return;
  Tensor t = Tensor::from(values_, {int64_t(values_.size())});
  group->all_reduce(t);  // one rank's value plus zeros: exact
  values_ = t.to_doubles();
}

double mean(const std::vector<double>& x) {
  double sum = 0;
  for (double v : x) sum += v;  // Python 3.11's sum(): left to right
  return sum / double(x.size());
}

double sample_stddev(const std::vector<double>& x) {
  if (x.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const double mu = mean(x);
  double squares = 0;
  for (double v : x) squares += (v - mu) * (v - mu);
  return std::sqrt(squares / double(x.size() - 1));
}

double mean_stderr(const std::vector<double>& x) {
  return sample_stddev(x) / std::sqrt(double(x.size()));
}

double bootstrap_perplexity_stderr(const std::vector<double>& ll, int64_t iters) {
  const int64_t chunk = std::min<int64_t>(1000, iters), chunks = iters / chunk;
  const double n = double(ll.size());
  std::vector<double> replicates(size_t(chunks * chunk));
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < chunks; i++) {
    PythonRandom rnd{uint64_t(i)};
    for (int64_t r = 0; r < chunk; r++) {
      double sum = 0;  // perplexity(rnd.choices(ll, k=len(ll)))
      for (size_t k = 0; k < ll.size(); k++) sum += ll[size_t(std::floor(rnd.random() * n))];
      replicates[size_t(i * chunk + r)] = std::exp(-(sum / n));
    }
  }
  return sample_stddev(replicates);
}

double pooled_stderr(const std::vector<double>& stderrs, const std::vector<double>& sizes) {
  double var = 0, total = 0;
  for (size_t i = 0; i < stderrs.size(); i++) {
    var += (sizes[i] - 1) * stderrs[i] * stderrs[i] * sizes[i];
    total += sizes[i];
  }
  return std::sqrt(var / (total - double(stderrs.size())) / total);
}

}  // namespace spectra
