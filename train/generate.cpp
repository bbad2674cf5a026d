#include "train/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/var.h"
#include "core/rng.h"

namespace spectra {

// Picks the next token from one row of logits.
static int sample(const std::vector<double>& logits, int64_t vocab, const SampleOptions& o,
                  Rng& rng) {
  std::vector<int> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  if (o.temperature <= 0)
    return *std::max_element(order.begin(), order.end(),
                             [&](int a, int b) { return logits[a] < logits[b]; });
  int64_t k = o.top_k > 0 ? std::min(o.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> p(static_cast<size_t>(k));
  double mx = logits[order[0]], sum = 0;
  for (int64_t i = 0; i < k; i++) sum += p[i] = std::exp((logits[order[i]] - mx) / o.temperature);
  double u = rng.uniform() * sum;
  for (int64_t i = 0; i < k; i++)
    if ((u -= p[i]) <= 0) return order[i];
  return order[k - 1];
}

std::string generate(const LM& model, const Tokenizer* tokenizer, const std::string& prompt,
                     const SampleOptions& opts,
                     const std::function<void(const GeneratedToken&)>& on_token) {
  ag::NoGradGuard no_grad;
  const ModelConfig& cfg = model.config();
  std::vector<int32_t> ids;
  if (tokenizer) {
    ids = tokenizer->encode(prompt);
    if (ids.empty()) ids = tokenizer->encode("\n");
  } else {
    for (unsigned char c : prompt) ids.push_back(c);
    if (ids.empty()) ids.push_back('\n');
  }
  Rng rng{opts.seed, 0};
  std::string out;
  for (int64_t n = 0; n < opts.tokens; n++) {
    // No KV cache: the models this serves are small; rerun the (clipped) context each time.
    int64_t start = std::max<int64_t>(0, int64_t(ids.size()) - cfg.context);
    std::vector<int32_t> window(ids.begin() + start, ids.end());
    int64_t t = int64_t(window.size());
    Tensor x = Tensor::from(window, {t}).to(model.device());
    Tensor last = model.logits(x, 1, t).value().slice(t - 1, t);
    std::vector<double> row = last.to_doubles();
    // Only ids that decode (the model's vocabulary may be padded beyond the tokenizer's).
    const int64_t vocab = std::min(tokenizer ? tokenizer->vocab_size() : 256, cfg.vocab_size);
    int next = sample(row, vocab, opts, rng);
    if (tokenizer && tokenizer->is_special(next)) break;
    ids.push_back(next);
    // Exact bytes: a character split over two tokens prints whole once both are out.
    std::string piece = tokenizer ? tokenizer->decode_bytes({next}) : std::string(1, char(next));
    out += piece;
    if (on_token) {
      double top = row[0], sum = 0;
      for (double z : row) top = std::max(top, z);
      for (double z : row) sum += std::exp(z - top);
      on_token({next, piece, row[size_t(next)] - top - std::log(sum)});
    }
  }
  return out;
}

}  // namespace spectra
