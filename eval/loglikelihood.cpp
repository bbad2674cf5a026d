#include "eval/loglikelihood.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/var.h"
#include "core/progress.h"
#include "eval/tasks.h"

namespace spectra {

LoglikelihoodRequest encode_pair(const Tokenizer& tok, std::string context,
                                 std::string continuation, int32_t prefix_token) {
  if (context.empty()) {  // the prefix token, unless the continuation starts with it
    std::vector<int32_t> cont = tok.encode(continuation);
    if (!cont.empty() && cont[0] == prefix_token)
      return {{cont[0]}, std::vector<int32_t>(cont.begin() + 1, cont.end())};
    return {{prefix_token}, std::move(cont)};
  }
  const size_t spaces = context.size() - py_strip(context, false, true).size();
  if (spaces > 0) {
    continuation = context.substr(context.size() - spaces) + continuation;
    context.resize(context.size() - spaces);
  }
  std::vector<int32_t> whole = tok.encode(context + continuation);
  std::vector<int32_t> ctx = tok.encode(context);
  std::vector<int32_t> cont(whole.begin() + long(std::min(ctx.size(), whole.size())), whole.end());
  return {std::move(ctx), std::move(cont)};
}

std::vector<LoglikelihoodRequest> rolling_windows(const std::vector<int32_t>& tokens,
                                                  int32_t prefix_token, int64_t max_length) {
  std::vector<LoglikelihoodRequest> out;
  const size_t n = tokens.size(), len = size_t(max_length);
  if (n == 0) return out;
  // The first window predicts its tokens from the prefix token alone ...
  const size_t first = std::min(len, n);
  out.push_back({{prefix_token}, {tokens.begin(), tokens.begin() + long(first)}});
  // ... each later one the next (up to) `len` tokens, with the tokens before them as context
  // back to `len` + 1 before its end (make_disjoint_window of a window of `len` inputs).
  for (size_t done = first; done < n;) {
    const size_t end = std::min(n, done + len);
    out.push_back({{tokens.begin() + long(end - len - 1), tokens.begin() + long(done)},
                   {tokens.begin() + long(done), tokens.begin() + long(end)}});
    done = end;
  }
  return out;
}

std::vector<double> vocab_rows(const LM& model, const Tensor& logits, int64_t row0, int64_t n) {
  Tensor local = logits.slice(row0, row0 + n).to(Device::cpu()).to(DType::f32);
  const dist::Group* tp = model.tp_group();
  const int parts = tp ? tp->size() : 1;
  if (parts == 1) return local.to_doubles();
  const int64_t rows = model.config().vocab_rows, cols = rows / parts;
  Tensor all = Tensor::empty({parts * n * cols});
  tp->all_gather(local.view({n * cols}), all);
  const float* g = all.data<float>();
  std::vector<double> out(size_t(n * rows));
  for (int r = 0; r < parts; r++)
    for (int64_t t = 0; t < n; t++)
      for (int64_t c = 0; c < cols; c++)
        out[size_t(t * rows + r * cols + c)] = g[(r * n + t) * cols + c];
  return out;
}

Scorer::Scorer(const LM& model, int64_t batch, int64_t max_length)
    : model_(model),
      batch_(std::max<int64_t>(1, batch)),
      max_length_(max_length > 0 ? max_length : model.config().context) {}

std::vector<Loglikelihood> Scorer::score(const std::vector<LoglikelihoodRequest>& requests,
                                         const std::string& label) const {
  ag::NoGradGuard no_grad;
  // Each request's model input: (context + continuation)[-(L+1):][:-1].
  struct Input {
    std::vector<int32_t> ids;
    size_t scored;  // the last `scored` positions predict the continuation
  };
  std::vector<Input> inputs(requests.size());
  for (size_t i = 0; i < requests.size(); i++) {
    const LoglikelihoodRequest& r = requests[i];
    SPECTRA_CHECK(!r.continuation.empty(), "Scorer: request {} has an empty continuation", i);
    std::vector<int32_t> all = r.context;
    all.insert(all.end(), r.continuation.begin(), r.continuation.end());
    const size_t keep = std::min(all.size(), size_t(max_length_ + 1));
    inputs[i].ids.assign(all.end() - long(keep), all.end() - 1);
    inputs[i].scored = std::min(r.continuation.size(), inputs[i].ids.size());
  }
  // Longest first: batches of similar lengths pad little.
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].ids.size() > inputs[b].ids.size(); });

  std::vector<Loglikelihood> out(requests.size());
  ProgressLine progress(label, double(requests.size()), "requests", !label.empty());
  const int64_t vocab = model_.config().vocab_rows;
  for (size_t first = 0; first < order.size(); first += size_t(batch_)) {
    const size_t count = std::min(order.size() - first, size_t(batch_));
    const size_t seq = inputs[order[first]].ids.size();
    std::vector<int32_t> ids(count * seq, 0);  // right padding with token 0
    for (size_t b = 0; b < count; b++)
      std::copy(inputs[order[first + b]].ids.begin(), inputs[order[first + b]].ids.end(),
                ids.begin() + long(b * seq));
    Tensor x = Tensor::from(ids, {int64_t(count * seq)}).to(model_.device());
    Tensor logits = model_.logits(x, int64_t(count), int64_t(seq)).value();
    for (size_t b = 0; b < count; b++) {
      const size_t i = order[first + b];
      const Input& in = inputs[i];
      const std::vector<int32_t>& cont = requests[i].continuation;
      // Only the scored rows come to the host, in f64 for the log-softmax.
      const int64_t row0 = int64_t(b * seq + in.ids.size() - in.scored);
      std::vector<double> rows = vocab_rows(model_, logits, row0, int64_t(in.scored));
      Loglikelihood& r = out[i];
      r.greedy = true;
      r.tokens = int64_t(in.scored);
      for (size_t t = 0; t < in.scored; t++) {
        const double* z = rows.data() + t * size_t(vocab);
        const double* top = std::max_element(z, z + vocab);  // first maximum, as argmax
        double sum = 0;
        for (int64_t v = 0; v < vocab; v++) sum += std::exp(z[v] - *top);
        const int32_t target = cont[cont.size() - in.scored + t];
        r.logprob += z[target] - *top - std::log(sum);
        r.greedy = r.greedy && (top - z) == target;
      }
    }
    progress.update(double(first + count));
  }
  progress.finish();
  return out;
}

}  // namespace spectra
