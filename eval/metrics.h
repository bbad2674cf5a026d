// lm-evaluation-harness's aggregation of per-document values into a task's metrics and their
// standard errors, in its order of operations (documents in order, Python's float sums):
//
//   mean           Σx / n
//   mean_stderr    sqrt(Σ(x − mean)² / (n − 1)) / sqrt(n)          (acc, acc_norm, exact_match,
//   ...) perplexity     exp(−mean(ll)), its stderr bootstrapped: 100000 resamples in chunks of
//   1000,
//                  chunk i drawing with Python's random.Random(i).choices, then their sample
//                  standard deviation (lambada)
//   groups         weighted by size: Σ(metric·size) / Σsize over the leaf tasks, the stderr
//                  pooled: sqrt(Σ(size − 1)·stderr²·size / (Σsize − tasks) / Σsize)  (MMLU)
//
// DocValues holds a task's per-document values on every rank: each rank fills the rows of its
// documents, and all_reduce (a sum: the other rows are zero) completes the table, so every
// rank aggregates the same numbers in the same order as one process.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dist/group.h"

namespace spectra {

class DocValues {
 public:
  DocValues(size_t docs, std::vector<std::string> columns);

  double& at(size_t doc, const std::string& column);
  std::vector<double> column(const std::string& name) const;  // every document's, in order
  void all_reduce(const dist::Group* group);                  // null or size 1: nothing

 private:
  size_t index(const std::string& column) const;
  size_t docs_;
  std::vector<std::string> columns_;
  std::vector<double> values_;  // docs × columns
};

double mean(const std::vector<double>& x);
double sample_stddev(const std::vector<double>& x);  // NaN below two values
double mean_stderr(const std::vector<double>& x);
double bootstrap_perplexity_stderr(const std::vector<double>& loglikelihoods,
                                   int64_t iters = 100000);
double pooled_stderr(const std::vector<double>& stderrs, const std::vector<double>& sizes);

}  // namespace spectra
