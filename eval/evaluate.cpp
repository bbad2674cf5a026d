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

namespace spectra {

namespace {

// What every metric is computed from: sums that add across documents and ranks.
struct Sums {
  double docs = 0, acc = 0, acc_norm = 0, ll = 0, tokens = 0, bytes = 0, words = 0;

  void all_reduce(const dist::Group* g) {
    if (!g || g->size() == 1) return;
    Tensor t =
        Tensor::from(std::vector<double>{docs, acc, acc_norm, ll, tokens, bytes, words}, {7});
    g->all_reduce(t);
    const double* v = t.data<double>();
    docs = v[0], acc = v[1], acc_norm = v[2], ll = v[3], tokens = v[4], bytes = v[5], words = v[6];
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

  // MMLU's subjects in a fixed order (the same on every rank): docs, acc, acc_norm each.
  std::map<std::string, size_t> subjects;
  for (const TaskDoc& d : task.docs)
    if (!d.subject.empty()) subjects.emplace(d.subject, 0);
  size_t next = 0;
  for (auto& [name, index] : subjects) index = next++;
  std::vector<double> subject_sums(3 * subjects.size());

  Sums sums;
  TaskResult out{task.name, task.path, int64_t(task.docs.size()), {}, nlohmann::json::array(),
                 {},        0};
  for (size_t j = 0; j < docs.size(); j++) {
    const TaskDoc& doc = task.docs[docs[j]];
    std::vector<double> ll;
    bool greedy = true;
    int64_t tokens = 0;
    for (size_t r = first_request[j]; r < first_request[j + 1]; r++) {
      ll.push_back(scores[r].logprob);
      greedy = greedy && scores[r].greedy;
      tokens += scores[r].tokens;
    }
    nlohmann::json sample = {{"doc", docs[j]}, {"line", doc.line}};
    sums.docs++;
    if (task.type == TaskType::multiple_choice) {
      std::vector<double> normed(ll.size());
      for (size_t c = 0; c < ll.size(); c++) normed[c] = ll[c] / doc.choice_chars[c];
      const double acc = argmax(ll) == size_t(doc.gold),
                   acc_norm = argmax(normed) == size_t(doc.gold);
      sums.acc += acc, sums.acc_norm += acc_norm;
      sample.update(
          {{"gold", doc.gold}, {"loglikelihoods", ll}, {"acc", acc}, {"acc_norm", acc_norm}});
      if (!doc.subject.empty()) {
        double* s = &subject_sums[3 * subjects.at(doc.subject)];
        s[0]++, s[1] += acc, s[2] += acc_norm;
        sample["subject"] = doc.subject;
      }
    } else if (task.type == TaskType::pair_difference) {
      const double diff = std::abs(ll[0] - ll[1]), stereotype = ll[0] > ll[1];
      sums.ll += diff, sums.acc += stereotype;
      sample.update(
          {{"loglikelihoods", ll}, {"likelihood_diff", diff}, {"pct_stereotype", stereotype}});
    } else if (task.type == TaskType::loglikelihood) {
      sums.acc += greedy, sums.ll += ll[0];
      sample.update({{"loglikelihood", ll[0]}, {"greedy", greedy}});
    } else {
      double total = 0;
      for (double x : ll) total += x;
      const std::string& text = doc.requests[0].first;
      sums.ll += total, sums.tokens += double(tokens), sums.bytes += double(text.size());
      sums.words += count_words(text);
      sample.update({{"loglikelihood", total}, {"tokens", tokens}});
    }
    if (o.samples && task.type != TaskType::perplexity)
      sample["arguments"] = doc.requests;  // the (context, continuation) pairs scored
    if (o.samples) out.samples.push_back(std::move(sample));
  }
  sums.all_reduce(o.group);
  if (o.group && o.group->size() > 1 && !subject_sums.empty()) {
    Tensor t = Tensor::from(subject_sums, {int64_t(subject_sums.size())});
    o.group->all_reduce(t);
    subject_sums = t.to_doubles();
  }

  if (task.type == TaskType::multiple_choice) {
    out.metrics = {{"acc", sums.acc / sums.docs}};
    if (task.acc_norm) out.metrics.push_back({"acc_norm", sums.acc_norm / sums.docs});
    // lm-eval's groups weigh their subjects by size: the mean over the group's documents.
    std::map<std::string, std::pair<double, double>> groups;  // group: (docs, acc)
    for (const auto& [subject, group] : mmlu_subjects()) {
      if (!subjects.count(subject)) continue;
      const double* s = &subject_sums[3 * subjects.at(subject)];
      out.subtasks[subject] = {
          {"docs", int64_t(s[0])}, {"acc", s[1] / s[0]}, {"acc_norm", s[2] / s[0]}};
      groups[group].first += s[0], groups[group].second += s[1];
    }
    for (const std::string& g : mmlu_groups())
      if (groups.count(g)) {
        std::string name = "acc_" + g;
        std::replace(name.begin(), name.end(), ' ', '_');
        out.metrics.push_back({name, groups[g].second / groups[g].first});
      }
  } else if (task.type == TaskType::pair_difference) {
    out.metrics = {{"likelihood_diff", sums.ll / sums.docs},
                   {"pct_stereotype", sums.acc / sums.docs}};
  } else if (task.type == TaskType::loglikelihood) {
    out.metrics = {{"acc", sums.acc / sums.docs}, {"perplexity", std::exp(-sums.ll / sums.docs)}};
  } else {
    out.metrics = {{"token_perplexity", std::exp(-sums.ll / sums.tokens)},
                   {"word_perplexity", std::exp(-sums.ll / sums.words)},
                   {"byte_perplexity", std::exp(-sums.ll / sums.bytes)},
                   {"bits_per_byte", -sums.ll / sums.bytes / std::log(2.0)}};
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
  TaskResult out{"perplexity", path, int64_t(sums.docs), {}, nlohmann::json::array(), {}, 0};
  out.metrics = {{"loss", loss}, {"token_perplexity", std::exp(loss)}};
  if (text_bytes > 0)
    out.metrics.push_back({"bits_per_byte", loss / std::log(2.0) / (text_bytes / file_tokens)});
  out.seconds = clock.seconds();
  return out;
}

}  // namespace spectra
