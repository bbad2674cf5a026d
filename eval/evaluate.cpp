#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/var.h"
#include "core/progress.h"
#include "data/loader.h"
#include "data/utf8.h"
#include "eval/generate_until.h"
#include "eval/loglikelihood.h"
#include "eval/metrics.h"

namespace spectra {

namespace {

// A token file's perplexity: sums that add across windows and ranks.
struct Sums {
  double docs = 0, ll = 0, tokens = 0;

  void all_reduce(const dist::Group* g) {
    if (!g || g->size() == 1) return;
    Tensor t = Tensor::from(std::vector<double>{docs, ll, tokens}, {3});
    g->all_reduce(t);
    const double* v = t.data<double>();
    docs = v[0], ll = v[1], tokens = v[2];
  }
};

// Python's len(re.split(r"\s+", text)): one more than the runs of whitespace.
double count_words(const std::string& text) {
  double words = 1;
  bool in_space = false;
  for (size_t i = 0; i < text.size();) {
    const bool space = python_space(utf8::decode(text, i));
    if (space && !in_space) words++;
    in_space = space;
  }
  return words;
}

// MMLU: each subject's acc and acc_norm (in TaskResult::subtasks), and lm-eval's groups over
// them (weighted by size, the stderr pooled) for the whole file and each of its four groups.
void add_mmlu_groups(const Task& task, const DocValues& values, TaskResult& out) {
  std::map<std::string, std::vector<size_t>> docs;  // subject: its documents
  for (size_t d = 0; d < task.docs.size(); d++)
    if (!task.docs[d].subject.empty()) docs[task.docs[d].subject].push_back(d);
  if (docs.empty()) return;
  const std::vector<double> acc = values.column("acc"), acc_norm = values.column("acc_norm");
  struct Leaf {
    std::string group;
    double acc, stderr, size;
  };
  std::vector<Leaf> leaves;  // in lm-eval's order of the subjects (alphabetical)
  for (const auto& [subject, group] : mmlu_subjects()) {
    if (!docs.count(subject)) continue;
    std::vector<double> a, n;
    for (size_t d : docs[subject]) a.push_back(acc[d]), n.push_back(acc_norm[d]);
    out.subtasks[subject] = {{"docs", a.size()},
                             {"acc", mean(a)},
                             {"acc_stderr", mean_stderr(a)},
                             {"acc_norm", mean(n)},
                             {"acc_norm_stderr", mean_stderr(n)}};
    leaves.push_back({group, mean(a), mean_stderr(a), double(a.size())});
  }
  auto aggregate = [&](const std::string& name, const std::string& group) {
    double weighted = 0, total = 0;
    std::vector<double> stderrs, sizes;
    for (const Leaf& l : leaves)
      if (group.empty() || l.group == group) {
        weighted += l.acc * l.size, total += l.size;
        stderrs.push_back(l.stderr), sizes.push_back(l.size);
      }
    if (sizes.empty()) return;
    out.metrics.push_back({name, weighted / total});
    out.stderrs[name] = pooled_stderr(stderrs, sizes);
  };
  out.metrics.clear();  // the file's acc is lm-eval's group acc
  aggregate("acc", "");
  for (std::string g : mmlu_groups()) {
    const std::string group = g;
    std::replace(g.begin(), g.end(), ' ', '_');
    aggregate("acc_" + g, group);
  }
}

size_t argmax(const std::vector<double>& v) {
  return size_t(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

int32_t prefix_token(const Tokenizer& tokenizer) {
  return std::max(0, tokenizer.token_to_id("<|endoftext|>"));
}

double TaskResult::metric(const std::string& name) const {
  for (auto& [k, v] : metrics)
    if (k == name) return v;
  return std::nan("");
}

nlohmann::json TaskResult::to_json() const {
  nlohmann::ordered_json m;
  for (auto& [k, v] : metrics) m[k] = v;
  nlohmann::ordered_json j = {{"task", task}, {"data", path}, {"docs", docs}, {"metrics", m}};
  nlohmann::ordered_json e;
  for (auto& [k, v] : metrics)  // lm-eval's "N/A" where it has no standard error
    e[k] = stderrs.count(k) && std::isfinite(stderrs.at(k)) ? nlohmann::ordered_json(stderrs.at(k))
                                                            : nlohmann::ordered_json("N/A");
  j["stderr"] = e;
  if (!subtasks.empty()) j["subtasks"] = subtasks;
  j["seconds"] = seconds;
  return j;
}

TaskResult evaluate(const LM& model, const Tokenizer* tokenizer, const Task& task,
                    const EvalOptions& o) {
  if (!tokenizer)
    user_error(
        "{}: task '{}' reads text, and the model is byte-level (it holds no tokenizer); "
        "evaluate a model trained on tokenized data",
        task.path, task.name);
  if (task.type == TaskType::generate_until) return evaluate_generation(model, *tokenizer, task, o);
  Stopwatch clock;
  const int rank = o.group ? o.group->rank() : 0, ranks = o.group ? o.group->size() : 1;
  const int32_t prefix = prefix_token(*tokenizer);
  const int64_t max_length = o.max_length > 0 ? o.max_length : model.config().context;

  // This rank's documents and their requests, in order.
  std::vector<size_t> docs;
  std::vector<LoglikelihoodRequest> requests;
  std::vector<size_t> first_request;  // per document of this rank, plus the end
  for (size_t d = size_t(rank); d < task.docs.size(); d += size_t(ranks)) {
    docs.push_back(d);
    first_request.push_back(requests.size());
    for (const auto& [context, continuation] : task.docs[d].requests) {
      if (task.type == TaskType::perplexity) {
        for (LoglikelihoodRequest& w :
             rolling_windows(tokenizer->encode(context), prefix, max_length))
          requests.push_back(std::move(w));
      } else {
        requests.push_back(encode_pair(*tokenizer, context, continuation, prefix));
        if (requests.back().continuation.empty())
          user_error("{}:{}: the continuation \"{}\" encodes to no tokens", task.path,
                     task.docs[d].line, continuation);
      }
    }
  }
  first_request.push_back(requests.size());
  const std::string label = o.progress && rank == 0 ? "eval " + task.name : "";
  std::vector<Loglikelihood> scores = Scorer(model, o.batch, max_length).score(requests, label);

  // Every document's values (this rank's rows filled here, the others' by the all-reduce).
  std::vector<std::string> columns;
  switch (task.type) {
    case TaskType::multiple_choice:
      columns = {"acc", "acc_norm"};
      break;
    case TaskType::pair_difference:
      columns = {"likelihood_diff", "pct_stereotype"};
      break;
    case TaskType::loglikelihood:
      columns = {"acc", "ll"};
      break;
    default:
      columns = {"ll", "tokens", "bytes", "words"};
  }
  DocValues values(task.docs.size(), columns);
  TaskResult out;
  out.task = task.name, out.path = task.path, out.docs = int64_t(task.docs.size());
  for (size_t j = 0; j < docs.size(); j++) {
    const size_t d = docs[j];
    const TaskDoc& doc = task.docs[d];
    std::vector<double> ll;
    bool greedy = true;
    int64_t tokens = 0;
    for (size_t r = first_request[j]; r < first_request[j + 1]; r++) {
      ll.push_back(scores[r].logprob);
      greedy = greedy && scores[r].greedy;
      tokens += scores[r].tokens;
    }
    nlohmann::json sample = {{"doc", d}, {"line", doc.line}};
    if (task.type == TaskType::multiple_choice) {
      std::vector<double> normed(ll.size());
      for (size_t c = 0; c < ll.size(); c++) normed[c] = ll[c] / doc.choice_chars[c];
      values.at(d, "acc") = argmax(ll) == size_t(doc.gold);
      values.at(d, "acc_norm") = argmax(normed) == size_t(doc.gold);
      sample.update({{"gold", doc.gold},
                     {"loglikelihoods", ll},
                     {"acc", values.at(d, "acc")},
                     {"acc_norm", values.at(d, "acc_norm")}});
      if (!doc.subject.empty()) sample["subject"] = doc.subject;
    } else if (task.type == TaskType::pair_difference) {
      values.at(d, "likelihood_diff") = std::abs(ll[0] - ll[1]);
      values.at(d, "pct_stereotype") = ll[0] > ll[1];
      sample.update({{"loglikelihoods", ll},
                     {"likelihood_diff", values.at(d, "likelihood_diff")},
                     {"pct_stereotype", values.at(d, "pct_stereotype")}});
    } else if (task.type == TaskType::loglikelihood) {
      values.at(d, "acc") = greedy, values.at(d, "ll") = ll[0];
      sample.update({{"loglikelihood", ll[0]}, {"greedy", greedy}});
    } else {
      double total = 0;
      for (double x : ll) total += x;
      const std::string& text = doc.requests[0].first;
      values.at(d, "ll") = total, values.at(d, "tokens") = double(tokens);
      values.at(d, "bytes") = double(text.size()), values.at(d, "words") = count_words(text);
      sample.update({{"loglikelihood", total}, {"tokens", tokens}});
    }
    if (o.samples && task.type != TaskType::perplexity)
      sample["arguments"] = doc.requests;  // the (context, continuation) pairs scored
    if (o.samples) out.samples.push_back(std::move(sample));
  }
  values.all_reduce(o.group);

  // A mean and its standard error, as lm-eval aggregates one.
  auto add_mean = [&](const std::string& name, const std::vector<double>& x) {
    out.metrics.push_back({name, mean(x)});
    out.stderrs[name] = mean_stderr(x);
  };
  if (task.type == TaskType::multiple_choice) {
    add_mean("acc", values.column("acc"));
    if (task.acc_norm) add_mean("acc_norm", values.column("acc_norm"));
    add_mmlu_groups(task, values, out);
  } else if (task.type == TaskType::pair_difference) {
    add_mean("likelihood_diff", values.column("likelihood_diff"));
    add_mean("pct_stereotype", values.column("pct_stereotype"));
  } else if (task.type == TaskType::loglikelihood) {
    add_mean("acc", values.column("acc"));
    const std::vector<double> ll = values.column("ll");
    out.metrics.push_back({"perplexity", std::exp(-mean(ll))});
    out.stderrs["perplexity"] = bootstrap_perplexity_stderr(ll);
  } else {  // lm-eval's weighted perplexities: sums over the documents, no standard error
    double sum_ll = 0, tokens = 0, bytes = 0, words = 0;
    for (size_t d = 0; d < task.docs.size(); d++) {
      sum_ll += values.at(d, "ll"), tokens += values.at(d, "tokens");
      bytes += values.at(d, "bytes"), words += values.at(d, "words");
    }
    out.metrics = {{"token_perplexity", std::exp(-sum_ll / tokens)},
                   {"word_perplexity", std::exp(-sum_ll / words)},
                   {"byte_perplexity", std::exp(-sum_ll / bytes)},
                   {"bits_per_byte", -sum_ll / bytes / std::log(2.0)}};
  }
  out.seconds = clock.seconds();
  return out;
}

TaskResult evaluate_token_file(const LM& model, const std::string& path,
                               const std::string& tokenizer_sha256, const EvalOptions& o) {
  Stopwatch clock;
  ag::NoGradGuard no_grad;
  const int64_t t = o.seq_len > 0 ? o.seq_len : model.config().context;
  if (t > model.config().context)
    user_error("--seq-len {} is longer than the model's context of {} tokens", t,
               model.config().context);
  // Windows exactly as the loader cuts them: t + 1 tokens every t, per file, files in order.
  std::vector<TokenFile> files;
  std::vector<std::pair<size_t, int64_t>> windows;  // (file, first token)
  double text_bytes = 0, file_tokens = 0;
  for (const std::string& f : source_files(path)) {
    files.emplace_back(f);
    const TokenFileMeta& m = files.back().meta();
    if (!tokenizer_sha256.empty() && m.tokenizer_sha256 != tokenizer_sha256)
      user_error("{}: prepared with tokenizer sha256 {}, the model's tokenizer is {}", f,
                 m.tokenizer_sha256, tokenizer_sha256);
    if (m.vocab_size > model.config().vocab_size)
      user_error("{}: its tokenizer has {} tokens, more than the model's vocabulary of {}", f,
                 m.vocab_size, model.config().vocab_size);
    text_bytes += double(m.text_bytes), file_tokens += double(m.num_tokens);
    for (int64_t w = 0; w < (files.back().num_tokens() - 1) / t; w++)
      windows.push_back({files.size() - 1, w * t});
  }
  const int64_t total = int64_t(windows.size());
  const int64_t first = o.val_split ? total - validation_windows(total, o.val_fraction) : 0;
  if (total - first < 1) user_error("{}: no window of {} tokens to evaluate", path, t + 1);

  const int rank = o.group ? o.group->rank() : 0, ranks = o.group ? o.group->size() : 1;
  std::vector<int64_t> mine;
  for (int64_t w = first + rank; w < total; w += ranks) mine.push_back(w);
  ProgressLine progress("eval perplexity", double(mine.size()), "windows", o.progress && rank == 0);
  Sums sums;
  std::vector<int32_t> buf(size_t(t + 1));
  const int64_t b = std::max<int64_t>(1, o.batch);
  for (size_t i = 0; i < mine.size(); i += size_t(b)) {
    const int64_t n = std::min<int64_t>(b, int64_t(mine.size() - i));
    Tensor ids = Tensor::empty({n * t}, DType::i32), targets = Tensor::empty({n * t}, DType::i32);
    for (int64_t k = 0; k < n; k++) {
      auto [f, start] = windows[size_t(mine[i + size_t(k)])];
      files[f].read(start, t + 1, buf.data());
      std::copy(buf.begin(), buf.end() - 1, ids.data<int32_t>() + k * t);
      std::copy(buf.begin() + 1, buf.end(), targets.data<int32_t>() + k * t);
    }
    Tensor losses;
    model.loss(ids.to(model.device()), targets.to(model.device()), n, t, &losses);
    for (double x : losses.to_doubles()) sums.ll -= x;
    sums.tokens += double(n * t);
    sums.docs += double(n);
    progress.update(double(i) + double(n));
  }
  progress.finish();
  sums.all_reduce(o.group);
  const double loss = -sums.ll / sums.tokens;
  TaskResult out;
  out.task = "perplexity", out.path = path, out.docs = int64_t(sums.docs);
  out.metrics = {{"loss", loss}, {"token_perplexity", std::exp(loss)}};
  if (text_bytes > 0)
    out.metrics.push_back({"bits_per_byte", loss / std::log(2.0) / (text_bytes / file_tokens)});
  out.seconds = clock.seconds();
  return out;
}

}  // namespace spectra
