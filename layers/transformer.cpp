#include "layers/transformer.h"

#include "autograd/ops.h"

namespace spectra {

Attention::Attention(const ModelConfig& c, const LayerOptions& o)
    : q_(c.hidden, c.hidden, c.ternary(), c.ternary_eps, TpSplit::column, o, c.ternary_shards),
      k_(c.hidden, c.hidden, c.ternary(), c.ternary_eps, TpSplit::column, o, c.ternary_shards),
      v_(c.hidden, c.hidden, c.ternary(), c.ternary_eps, TpSplit::column, o, c.ternary_shards),
      o_(c.hidden, c.hidden, c.ternary(), c.ternary_eps, TpSplit::row, o, c.ternary_shards),
      heads_(c.heads / o.tp_size()),
      head_dim_(c.head_dim()),
      theta_(c.rope_theta),
      impl_(c.attention) {
  add_child("q_proj", &q_);
  add_child("k_proj", &k_);
  add_child("v_proj", &v_);
  add_child("o_proj", &o_);
}

ag::Var Attention::forward(const ag::Var& x, int64_t batch, int64_t seq) const {
  Shape heads{batch, seq, heads_, head_dim_};
  ag::Var q = ag::rope(ag::view(q_.forward(x), heads), 0, theta_);
  ag::Var k = ag::rope(ag::view(k_.forward(x), heads), 0, theta_);
  ag::Var v = ag::view(v_.forward(x), heads);
  ag::Var a = ag::attention(q, k, v, impl_);
  return o_.forward(ag::view(a, {batch * seq, heads_ * head_dim_}));
}

ag::Var Attention::forward_cached(const ag::Var& x, const std::vector<CacheSegment>& segments,
                                  KVCache& cache, int64_t layer) const {
  const Shape rows{x.shape()[0], heads_, head_dim_};
  const std::vector<ag::Var> qkv = q_.packed()
                                       ? Linear::forward_packed({&q_, &k_, &v_}, x)
                                       : std::vector{q_.forward(x), k_.forward(x), v_.forward(x)};
  const Tensor q = qkv[0].value().view(rows), k = qkv[1].value().view(rows),
               v = qkv[2].value().view(rows);
  auto rows_of = [&](int64_t n) { return Shape{n, heads_, head_dim_}; };
  Tensor a = Tensor::empty(q.shape(), q.dtype(), q.device());
  int64_t row = 0;
  for (const CacheSegment& s : segments) {
    // This segment's positions continue the slot's: RoPE at those positions, then attention
    // over everything cached (the kernel aligns the Tq queries with the last Tq keys).
    const Shape one{1, s.tokens, heads_, head_dim_};
    const int64_t pos0 = cache.length(s.slot);
    auto part = [&](const Tensor& t) { return ag::Var(t.slice(row, row + s.tokens).view(one)); };
    ag::Var qs = ag::rope(part(q), pos0, theta_);
    ag::Var ks = ag::rope(part(k), pos0, theta_);
    auto [keys, values] = cache.append(layer, s.slot, ks.value().view(rows_of(s.tokens)),
                                       part(v).value().view(rows_of(s.tokens)));
    a.slice(row, row + s.tokens)
        .copy_from(
            ag::attention(qs, ag::Var(keys), ag::Var(values)).value().view(rows_of(s.tokens)));
    row += s.tokens;
  }
  return o_.forward(ag::Var(a.view({rows[0], heads_ * head_dim_})));
}

MLP::MLP(const ModelConfig& c, const LayerOptions& o)
    : gate_(c.hidden, c.ffn, c.ternary(), c.ternary_eps, TpSplit::column, o, c.ternary_shards),
      up_(c.hidden, c.ffn, c.ternary(), c.ternary_eps, TpSplit::column, o, c.ternary_shards),
      down_(c.ffn, c.hidden, c.ternary(), c.ternary_eps, TpSplit::row, o, c.ternary_shards) {
  add_child("gate_proj", &gate_);
  add_child("up_proj", &up_);
  add_child("down_proj", &down_);
}

ag::Var MLP::forward(const ag::Var& x) const {
  if (gate_.packed()) {  // inference: the input prepared once for both
    const std::vector<ag::Var> gu = Linear::forward_packed({&gate_, &up_}, x);
    return down_.forward(ag::swiglu(gu[0], gu[1]));
  }
  return down_.forward(ag::swiglu(gate_.forward(x), up_.forward(x)));
}

Block::Block(const ModelConfig& c, const LayerOptions& o)
    : input_norm_(c.hidden, c.norm_eps, o),
      post_attention_norm_(c.hidden, c.norm_eps, o),
      attn_(c, o),
      mlp_(c, o) {
  add_child("input_layernorm", &input_norm_);
  add_child("self_attn", &attn_);
  add_child("post_attention_layernorm", &post_attention_norm_);
  add_child("mlp", &mlp_);
}

ag::Var Block::forward(const ag::Var& x, int64_t batch, int64_t seq) const {
  ag::AddNorm h =
      post_attention_norm_.forward_added(x, attn_.forward(input_norm_.forward(x), batch, seq));
  return ag::add(h.sum, mlp_.forward(h.normed));
}

std::vector<std::pair<std::string, Linear*>> Block::projections() {
  return {{"self_attn.q_proj", &attn_.q_}, {"self_attn.k_proj", &attn_.k_},
          {"self_attn.v_proj", &attn_.v_}, {"self_attn.o_proj", &attn_.o_},
          {"mlp.gate_proj", &mlp_.gate_},  {"mlp.up_proj", &mlp_.up_},
          {"mlp.down_proj", &mlp_.down_}};
}

std::vector<std::pair<std::string, const Linear*>> Block::projections() const {
  std::vector<std::pair<std::string, const Linear*>> out;
  for (auto& [name, linear] : const_cast<Block*>(this)->projections())
    out.emplace_back(name, linear);
  return out;
}

ag::Var Block::forward_cached(const ag::Var& x, const std::vector<CacheSegment>& segments,
                              KVCache& cache, int64_t layer) const {
  ag::AddNorm h = post_attention_norm_.forward_added(
      x, attn_.forward_cached(input_norm_.forward(x), segments, cache, layer));
  return ag::add(h.sum, mlp_.forward(h.normed));
}

}  // namespace spectra
