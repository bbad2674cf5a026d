#include "eval/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/var.h"
#include "core/error.h"
#include "core/rng.h"
#include "eval/loglikelihood.h"
#include "layers/kv_cache.h"

namespace spectra {

namespace {

// Picks the next token from one row of logits.
int sample(const std::vector<double>& logits, int64_t vocab, const SampleOptions& o, Rng& rng) {
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

double log_softmax_at(const std::vector<double>& row, size_t i) {
  double top = *std::max_element(row.begin(), row.end()), sum = 0;
  for (double z : row) sum += std::exp(z - top);
  return row[i] - top - std::log(sum);
}

// One prompt's progress.
struct Sequence {
  std::vector<int32_t> ids;
  size_t start = 0;   // the window's first token
  size_t cached = 0;  // tokens of the window already in the cache slot
  Rng rng;
  std::string out;
  bool done = false;
};

}  // namespace

std::vector<std::string> generate(
    const LM& model, const Tokenizer* tokenizer, const std::vector<std::string>& prompts,
    const SampleOptions& opts, const std::function<void(size_t, const GeneratedToken&)>& on_token) {
  std::vector<std::vector<int32_t>> ids(prompts.size());
  for (size_t i = 0; i < prompts.size(); i++) {
    const std::string p = prompts[i].empty() ? "\n" : prompts[i];
    if (tokenizer)
      ids[i] = tokenizer->encode(p);
    else
      for (unsigned char c : p) ids[i].push_back(c);
    if (ids[i].empty()) ids[i] = tokenizer ? tokenizer->encode("\n") : std::vector<int32_t>{'\n'};
  }
  return generate(model, tokenizer, ids, opts, on_token);
}

std::vector<std::string> generate(
    const LM& model, const Tokenizer* tokenizer, const std::vector<std::vector<int32_t>>& prompts,
    const SampleOptions& opts, const std::function<void(size_t, const GeneratedToken&)>& on_token) {
  ag::NoGradGuard no_grad;
  const ModelConfig& cfg = model.config();
  // Only ids that decode (the model's vocabulary may be padded beyond the tokenizer's).
  const int64_t vocab = std::min(tokenizer ? tokenizer->vocab_size() : 256, cfg.vocab_size);
  const size_t keep = size_t(std::max<int64_t>(1, cfg.context / 2));
  // Under tensor parallelism the cache is not split: each token reruns the window, and the
  // vocabulary-parallel logits of its last row are gathered (every rank draws the same token).
  const bool cached = opts.cache && !(model.tp_group() && model.tp_group()->size() > 1);
  std::vector<std::string> results(prompts.size());

  for (size_t first = 0; first < prompts.size();
       first += size_t(std::max<int64_t>(1, opts.batch))) {
    const size_t count = std::min(prompts.size() - first, size_t(std::max<int64_t>(1, opts.batch)));
    std::vector<Sequence> seqs(count);
    for (size_t i = 0; i < count; i++) {
      Sequence& s = seqs[i];
      s.ids = prompts[first + i];
      SPECTRA_CHECK(!s.ids.empty(), "generate: prompt {} has no tokens", first + i);
      // Independent Philox streams per prompt; prompt 0's is the single-prompt stream.
      s.rng = Rng{opts.seed + uint64_t(first + i) * 0x9E3779B97F4A7C15ull, 0};
    }
    std::unique_ptr<KVCache> cache;
    if (cached)
      cache = std::make_unique<KVCache>(cfg, int64_t(count), cfg.context, model.compute_dtype(),
                                        model.device());

    for (int64_t n = 0; n < opts.tokens; n++) {
      // Each unfinished sequence's window for this step, shifted when it outgrew the context.
      std::vector<size_t> active;
      for (size_t i = 0; i < count; i++) {
        Sequence& s = seqs[i];
        if (s.done) continue;
        if (s.ids.size() - s.start > size_t(cfg.context)) {
          s.start = s.ids.size() - keep;
          s.cached = 0;
          if (cache) cache->reset(int64_t(i));
        }
        active.push_back(i);
      }
      if (active.empty()) break;

      // The logits row that predicts each active sequence's next token.
      std::vector<std::vector<double>> last(active.size());
      if (cache) {
        std::vector<int32_t> batch;
        std::vector<CacheSegment> segments;
        for (size_t i : active) {
          Sequence& s = seqs[i];
          batch.insert(batch.end(), s.ids.begin() + long(s.start + s.cached), s.ids.end());
          segments.push_back({int64_t(i), int64_t(s.ids.size() - s.start - s.cached)});
          s.cached = s.ids.size() - s.start;
        }
        Tensor x = Tensor::from(batch, {int64_t(batch.size())}).to(model.device());
        Tensor logits = model.logits_cached(x, segments, *cache);
        int64_t row = 0;
        for (size_t j = 0; j < active.size(); j++) {
          row += segments[j].tokens;
          last[j] = vocab_rows(model, logits, row - 1, 1);
        }
      } else {
        for (size_t j = 0; j < active.size(); j++) {
          const Sequence& s = seqs[active[j]];
          std::vector<int32_t> window(s.ids.begin() + long(s.start), s.ids.end());
          const int64_t t = int64_t(window.size());
          Tensor x = Tensor::from(window, {t}).to(model.device());
          last[j] = vocab_rows(model, model.logits(x, 1, t).value(), t - 1, 1);
        }
      }

      for (size_t j = 0; j < active.size(); j++) {
        Sequence& s = seqs[active[j]];
        const std::vector<double>& row = last[j];
        const int next = sample(row, vocab, opts, s.rng);
        if (tokenizer && tokenizer->is_special(next)) {
          s.done = true;
          continue;
        }
        s.ids.push_back(next);
        // Exact bytes: a character split over two tokens prints whole once both are out.
        std::string piece =
            tokenizer ? tokenizer->decode_bytes({next}) : std::string(1, char(next));
        s.out += piece;
        if (on_token) on_token(first + active[j], {next, piece, log_softmax_at(row, size_t(next))});
        for (const std::string& stop : opts.stop)  // only the newest bytes can complete one
          if (!stop.empty() &&
              s.out.find(stop, s.out.size() - std::min(s.out.size(), piece.size() + stop.size())) !=
                  std::string::npos)
            s.done = true;
      }
    }
    for (size_t i = 0; i < count; i++) results[first + i] = std::move(seqs[i].out);
  }
  return results;
}

std::string generate(const LM& model, const Tokenizer* tokenizer, const std::string& prompt,
                     const SampleOptions& opts,
                     const std::function<void(const GeneratedToken&)>& on_token) {
  std::function<void(size_t, const GeneratedToken&)> each;
  if (on_token) each = [&](size_t, const GeneratedToken& t) { on_token(t); };
  return generate(model, tokenizer, std::vector<std::string>{prompt}, opts, each)[0];
}

}  // namespace spectra
