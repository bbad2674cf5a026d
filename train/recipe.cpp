// Recipe loading in four passes: YAML -> a tree whose every value remembers its file and line,
// with `base:` chains merged (both in train/recipe_tree.cpp); `--set` overrides applied; the tree
// bound to Recipe through one key table (type and range checks), then the cross-key checks.
// Recipe::text is emitted from the bound Recipe, so it holds every key (defaults and derived values
// included) and re-parses to the same Recipe.
//
// Relative data paths (data.text, data.tokenizer, data.datasets) resolve against the file the
// key came from: "./x" and "../x" against that file's directory; any other relative path against
// the project root, the nearest ancestor of that directory holding a `recipes/` folder (so the
// shipped recipes name "data/corpus/kjv.txt.gz" and work from any working directory), or the
// working directory when there is none. Values given with --set resolve against the working
// directory. Output paths (train.out, checkpoint.dir, log.metrics) stay relative to the working
// directory, as for any command-line tool.
#include "train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <type_traits>
#include <variant>

#include "core/error.h"
#include "dist/data_parallel.h"
#include "eval/tasks.h"
#include "train/placement.h"
#include "train/recipe_keys.h"
#include "train/recipe_tree.h"

namespace spectra {

namespace {

namespace fs = std::filesystem;
using namespace recipe_tree;
using namespace recipe_keys;

// ---- Binding the tree to a Recipe ---------------------------------------------------------

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

class Binder {
 public:
  Binder(Recipe& r, std::string top) : r_(r), top_(std::move(top)) {}

  void bind(const Node& root) {
    std::vector<Field> fields = recipe_fields(r_);
    std::vector<std::string> sections(std::begin(kSections), std::end(kSections));
    for (const auto& [sec, node] : root.map) {
      if (std::find(sections.begin(), sections.end(), sec) == sections.end())
        key_error(node.where(), sec, "unknown section; " + suggest(sec, sections));
      if (node.kind == Node::Null) continue;
      if (node.kind != Node::Map)
        key_error(node.where(), sec,
                  fmt::format("must be a mapping of keys ({}: {{key: value, ...}})", sec));
      std::vector<std::string> keys;
      for (const Field& f : fields)
        if (section_of(f.key) == sec) keys.push_back(leaf_of(f.key));
      for (const auto& [k, v] : node.map) {
        std::string full = sec + "." + k;
        auto f = std::find_if(fields.begin(), fields.end(),
                              [&](const Field& f) { return f.key == full; });
        if (f == fields.end()) key_error(v.where(), full, "unknown key; " + suggest(k, keys));
        assign(*f, v, full);
      }
    }
    for (const Field& f : fields)
      if ((f.flags & kRequired) && !present(f.key))
        key_error(top_, f.key, "missing; every recipe must set it (directly or in its base)");
  }

  bool present(const std::string& key) const { return where_.count(key) > 0; }
  const std::map<std::string, std::string>& locations() const { return where_; }
  // Where a key was set, or the recipe's name for a default.
  std::string where(const std::string& key) const {
    auto it = where_.find(key);
    return it == where_.end() ? top_ : it->second;
  }

 private:
  void assign(const Field& f, const Node& v, const std::string& key) {
    where_[key] = v.where();
    if (v.kind == Node::Null) key_error(v.where(), key, "has no value; give one or remove the key");
    std::visit(overloaded{
                   [&](int64_t* p) { *p = integer<int64_t>(f, v, key); },
                   [&](int* p) { *p = integer<int>(f, v, key); },
                   [&](uint64_t* p) { *p = integer<uint64_t>(f, v, key); },
                   [&](double* p) { *p = number(f, v, key); },
                   [&](float* p) { *p = float(number(f, v, key)); },
                   [&](bool* p) {
                     const std::string b = string(f, v, key);
                     if (b != "true" && b != "false")
                       key_error(v.where(), key, fmt::format("is '{}'; use true or false", b));
                     *p = b == "true";
                   },
                   [&](std::string* p) { *p = string(f, v, key); },
                   [&](ModelKind* p) {
                     *p = string(f, v, key) == "trilm" ? ModelKind::trilm : ModelKind::floatlm;
                   },
                   [&](kernels::AttentionImpl* p) {
                     *p = *kernels::parse_attention_impl(string(f, v, key));  // a checked choice
                   },
                   [&](std::vector<std::string>* p) {
                     p->clear();
                     if (v.kind == Node::Scalar) {  // one path needs no list brackets
                       p->push_back(string(f, v, key));
                       return;
                     }
                     if (v.kind != Node::Seq)
                       key_error(v.where(), key, "must be a list of paths ([a.h5, b.h5])");
                     for (size_t i = 0; i < v.seq.size(); i++)
                       p->push_back(string(f, v.seq[i], fmt::format("{}[{}]", key, i)));
                   },
                   [&](std::vector<double>* p) {
                     p->clear();
                     if (v.kind == Node::Scalar) {
                       p->push_back(number(f, v, key));
                       return;
                     }
                     if (v.kind != Node::Seq)
                       key_error(v.where(), key, "must be a list of numbers ([1, 0.5])");
                     for (size_t i = 0; i < v.seq.size(); i++)
                       p->push_back(number(f, v.seq[i], fmt::format("{}[{}]", key, i)));
                   },
                   [&](std::vector<LrStage>* p) { stages(*p, v, key); },
                   [&](std::vector<WdStage>* p) { stages(*p, v, key); },
                   [&](std::vector<EvalTask>* p) { stages(*p, v, key); },
               },
               f.target);
  }

  const std::string& scalar(const Node& v, const std::string& key, const char* what) {
    if (v.kind != Node::Scalar)
      key_error(
          v.where(), key,
          fmt::format("must be {}, not a {}", what, v.kind == Node::Seq ? "list" : "mapping"));
    return v.scalar;
  }

  void check_range(const Field& f, const Node& v, const std::string& key, double x) {
    if (!f.range.contains(x))
      key_error(v.where(), key, fmt::format("is {}; it must be {}", v.scalar, f.range.str()));
  }

  template <class T>
  T integer(const Field& f, const Node& v, const std::string& key) {
    const std::string& s = scalar(v, key, "an integer");
    T x{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (v.quoted || ec != std::errc() || end != s.data() + s.size()) {
      double d;
      auto [dend, dec] = std::from_chars(s.data(), s.data() + s.size(), d);
      bool numeric = !v.quoted && dec == std::errc() && dend == s.data() + s.size();
      if (ec == std::errc::result_out_of_range)
        key_error(v.where(), key, fmt::format("{} is out of range; give a smaller integer", s));
      if (std::is_unsigned_v<T> && numeric && d < 0 && d == std::floor(d))
        key_error(v.where(), key, fmt::format("is {}; it must be >= 0", s));
      key_error(v.where(), key,
                numeric ? fmt::format("is {}, not an integer; give a whole number", s)
                        : fmt::format("is '{}', a string; it must be an integer", s));
    }
    check_range(f, v, key, double(x));
    return x;
  }

  double number(const Field& f, const Node& v, const std::string& key) {
    const std::string& s = scalar(v, key, "a number");
    double x = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (v.quoted || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(x))
      key_error(v.where(), key,
                fmt::format("is '{}', not a number; give one like 0.001 or 1e-3", s));
    check_range(f, v, key, x);
    return x;
  }

  std::string string(const Field& f, const Node& v, const std::string& key) {
    std::string s = scalar(v, key, "a string");
    if (f.choices && !is_choice(s, f.choices))
      key_error(v.where(), key, fmt::format("is '{}'; it must be one of {}", s, f.choices));
    if ((f.flags & kPath) && !s.empty()) s = resolve_path(s, *v.origin);
    return s;
  }

  static std::string resolve_path(const std::string& s, const Origin& o) {
    fs::path p(s);
    if (p.is_absolute()) return s;
    bool local = s == "." || s == ".." || s.starts_with("./") || s.starts_with("../");
    return ((local ? o.dir : o.root) / p).lexically_normal().string();
  }

  template <class Stage>
  void stages(std::vector<Stage>& out, const Node& v, const std::string& key) {
    constexpr bool schedule = requires(Stage s) { s.start; };
    const char* example = schedule ? "{start: 0.0, ...}" : "{task: lambada, data: FILE}";
    if (v.kind != Node::Seq)
      key_error(v.where(), key, fmt::format("must be a list of entries ([{}, ...])", example));
    if (schedule && v.seq.empty())
      key_error(v.where(), key, "needs at least one stage (start: 0.0)");
    out.clear();
    for (size_t i = 0; i < v.seq.size(); i++) {
      const Node& item = v.seq[i];
      std::string ikey = fmt::format("{}[{}]", key, i);
      if (item.kind != Node::Map)
        key_error(item.where(), ikey, fmt::format("must be a mapping ({})", example));
      Stage s;
      std::vector<Field> fields = stage_fields(s);
      std::vector<std::string> names;
      for (const Field& f : fields) names.push_back(f.key);
      for (const auto& [k, x] : item.map) {
        auto f =
            std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == k; });
        if (f == fields.end())
          key_error(x.where(), ikey + "." + k, "unknown key; " + suggest(k, names));
        assign(*f, x, ikey + "." + k);
      }
      for (const Field& f : fields)
        if ((f.flags & kRequired) && !item.find(f.key))
          key_error(item.where(), ikey + "." + f.key, "missing; every entry sets it");
      if constexpr (schedule) check_start(s, out, ikey, i);
      out.push_back(s);
    }
  }

  template <class Stage>
  void check_start(const Stage& s, const std::vector<Stage>& out, const std::string& ikey,
                   size_t i) {
    if (i == 0 && s.start != 0)
      key_error(where(ikey + ".start"), ikey + ".start", "the first stage must start at 0.0");
    if (i > 0 && s.start <= out.back().start)
      key_error(where(ikey + ".start"), ikey + ".start",
                fmt::format("{} does not come after the previous stage's {}; starts must increase",
                            s.start, out.back().start));
  }

  Recipe& r_;
  std::string top_;
  std::map<std::string, std::string> where_;
};

// ---- Cross-key checks and derived values ---------------------------------------------------

void finish(Recipe& r, const Binder& b) {
  ModelConfig& m = r.model;
  auto fail = [&](const std::string& key, const std::string& what) {
    key_error(b.where(key), key, what);
  };
  if (m.hidden % m.heads != 0)
    fail("model.heads", fmt::format("heads {} does not divide hidden {}; choose heads so that "
                                    "hidden/heads (the head size) is an integer",
                                    m.heads, m.hidden));
  if (m.head_dim() % 2 != 0)
    fail("model.heads", fmt::format("the head size hidden/heads = {} is odd; RoPE needs an even "
                                    "head size",
                                    m.head_dim()));
  const int tp = r.parallel.tp;
  if (m.heads % tp != 0)
    fail("parallel.tp", fmt::format("tp {} does not divide model.heads {}; tensor parallelism "
                                    "splits whole heads: use a divisor of {}",
                                    tp, m.heads, m.heads));
  if (m.ffn % tp != 0)
    fail("parallel.tp", fmt::format("tp {} does not divide model.ffn {}; use a divisor of both "
                                    "heads and ffn",
                                    tp, m.ffn));
  // TriLM scales per projection: the TP shards' by default (the paper's per-shard γ).
  if (!b.present("model.ternary_shards")) m.ternary_shards = tp;
  if (m.ternary_shards % tp != 0)
    fail("model.ternary_shards",
         fmt::format("{} is not a multiple of parallel.tp {}; every TP shard needs whole scale "
                     "blocks (omit it: it defaults to parallel.tp)",
                     m.ternary_shards, tp));
  if (m.hidden % m.ternary_shards != 0 || m.ffn % m.ternary_shards != 0)
    fail("model.ternary_shards",
         fmt::format("{} does not divide model.hidden {} and model.ffn {}; scale blocks split "
                     "the projections evenly",
                     m.ternary_shards, m.hidden, m.ffn));
  // The Megatron/GPT-NeoX rule: pad the vocabulary to a multiple of 128 per TP rank.
  if (!b.present("model.vocab_rows")) {
    int64_t q = 128 * int64_t(tp);
    m.vocab_rows = (m.vocab_size + q - 1) / q * q;
  }
  if (m.vocab_rows < m.vocab_size)
    fail("model.vocab_rows", fmt::format("{} is less than vocab_size {}; the embedding needs a row "
                                         "per token (omit it to pad automatically)",
                                         m.vocab_rows, m.vocab_size));
  if (m.vocab_rows % tp != 0)
    fail("model.vocab_rows",
         fmt::format("{} is not a multiple of parallel.tp {}; the vocabulary is "
                     "split evenly across TP ranks (omit it to pad "
                     "automatically)",
                     m.vocab_rows, tp));

  if (!b.present("train.seq_len")) r.train.seq_len = m.context;
  if (r.train.seq_len > m.context)
    fail("train.seq_len",
         fmt::format("{} exceeds model.context {}; the model has no positions past "
                     "its context",
                     r.train.seq_len, m.context));
  if (dist::accumulation_steps(r.train.global_batch, r.train.micro_batch, 1) == 0)
    fail("train.micro_batch", fmt::format("{} does not divide train.global_batch {}; the step's "
                                          "sequences split into whole micro-batches",
                                          r.train.micro_batch, r.train.global_batch));
  if (r.parallel.dp > 0 &&
      dist::accumulation_steps(r.train.global_batch, r.train.micro_batch, r.parallel.dp) == 0)
    fail("parallel.dp", fmt::format("train.global_batch {} is not a multiple of micro_batch {} x "
                                    "dp {}; every rank takes the same number of micro-batches",
                                    r.train.global_batch, r.train.micro_batch, r.parallel.dp));
  const std::string& dev = r.train.device;
  if (!is_device_word(dev)) fail("train.device", not_a_device_word(dev));
  if (dev == "cpu" && r.train.precision != "f32")
    fail("train.precision", fmt::format("is {} but train.device is cpu, which trains in f32 "
                                        "(--set train.precision=f32)",
                                        r.train.precision));
  if (r.train.cuda_graph && (dev == "cpu" || r.train.precision == "fp16"))
    fail("train.cuda_graph",
         fmt::format("is true but train.device is {} and train.precision {}: the graph runs on a "
                     "GPU, without fp16's changing loss scale (--set train.cuda_graph=false)",
                     dev, r.train.precision));
  if (r.train.cuda_graph && (tp > 1 || r.parallel.dp > 1))
    fail("train.cuda_graph", fmt::format("is true with parallel.tp {} and parallel.dp {}: the "
                                         "graph runs one process (--set train.cuda_graph=false)",
                                         tp, r.parallel.dp));
  if (m.attention != kernels::AttentionImpl::reference &&
      (dev == "cpu" || r.train.precision == "f32"))
    fail("model.attention",
         fmt::format("is {}, a CUDA kernel for bf16 or fp16, but train.device is {} and "
                     "train.precision {} (--set model.attention=reference)",
                     kernels::attention_impl_name(m.attention), dev, r.train.precision));

  if (!r.data.text.empty() && !r.data.datasets.empty())
    fail("data.datasets", fmt::format("is set and so is data.text ({}); train on one: a text "
                                      "corpus read as bytes or prepared token datasets",
                                      b.where("data.text")));
  if (!r.data.weights.empty() && r.data.weights.size() != r.data.datasets.size())
    fail("data.weights", fmt::format("has {} entries for {} data.datasets; give one mixture "
                                     "weight per dataset (or none: equal weights)",
                                     r.data.weights.size(), r.data.datasets.size()));

  r.quantize.present = std::any_of(b.locations().begin(), b.locations().end(), [](const auto& kv) {
    return kv.first.starts_with("quantize.");
  });
  if (!Recipe::Quantize::supported_bits(r.quantize.bits))
    fail("quantize.bits", fmt::format("is {}; QuantLMs have 3, 4, 6 or 8 bits", r.quantize.bits));

  if (!b.present("schedule.lr")) r.schedule.lr = {LrStage{}};
  if (!b.present("schedule.weight_decay")) r.schedule.weight_decay = {WdStage{}};
}

// ---- The resolved text ----------------------------------------------------------------------

void emit_value(YAML::Emitter& e, const Field& f) {
  auto num = [&](auto x) { e << fmt::format("{}", x); };  // shortest text that reads back exactly
  auto stage_list = [&](auto& stages) {
    e << YAML::BeginSeq;
    for (auto& s : stages) {
      e << YAML::Flow << YAML::BeginMap;
      for (const Field& f : stage_fields(s)) {
        e << YAML::Key << f.key << YAML::Value;
        emit_value(e, f);
      }
      e << YAML::EndMap;
    }
    e << YAML::EndSeq;
  };
  std::visit(overloaded{
                 [&](int64_t* p) { num(*p); },
                 [&](int* p) { num(*p); },
                 [&](uint64_t* p) { num(*p); },
                 [&](double* p) { num(*p); },
                 [&](float* p) { num(*p); },
                 [&](bool* p) { e << (*p ? "true" : "false"); },
                 [&](std::string* p) {
                   if (!f.choices) e << YAML::DoubleQuoted;  // free text: never read as a number
                   e << *p;
                 },
                 [&](ModelKind* p) { e << model_kind_name(*p); },
                 [&](kernels::AttentionImpl* p) { e << kernels::attention_impl_name(*p); },
                 [&](std::vector<std::string>* p) {
                   e << YAML::Flow << YAML::BeginSeq;
                   for (const std::string& s : *p) e << YAML::DoubleQuoted << s;
                   e << YAML::EndSeq;
                 },
                 [&](std::vector<double>* p) {
                   e << YAML::Flow << YAML::BeginSeq;
                   for (double x : *p) e << fmt::format("{}", x);
                   e << YAML::EndSeq;
                 },
                 [&](std::vector<LrStage>* p) { stage_list(*p); },
                 [&](std::vector<WdStage>* p) { stage_list(*p); },
                 [&](std::vector<EvalTask>* p) { stage_list(*p); },
             },
             f.target);
}

std::string emit(Recipe& r) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  std::string section;
  for (const Field& f : recipe_fields(r)) {
    if (section_of(f.key) == "quantize" && !r.quantize.present) continue;
    if (section_of(f.key) != section) {
      if (!section.empty()) e << YAML::EndMap;
      section = section_of(f.key);
      e << YAML::Key << section << YAML::Value << YAML::BeginMap;
    }
    e << YAML::Key << leaf_of(f.key) << YAML::Value;
    emit_value(e, f);
  }
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

// ---- Overrides ------------------------------------------------------------------------------

// What the key table says of a path whose list indices are numbers ("schedule.lr.0.peak" is
// looked up as "schedule.lr[].peak"): whether such a key exists, and whether its value is a
// string (known false when no key has that name).
struct KeyInfo {
  bool known = false;
  bool is_string = false;  // the value is taken verbatim, never parsed as YAML
};
KeyInfo key_info(const std::vector<std::string>& segs) {
  Recipe dummy;
  std::string norm;
  for (const std::string& s : segs) {
    bool index =
        !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    norm += index ? "[]" : (norm.empty() ? "" : ".") + s;
  }
  for (const Field& f : recipe_fields(dummy)) {
    if (norm == f.key) {
      bool str = std::holds_alternative<std::string*>(f.target);
      return {true, str};
    }
    if (norm == f.key + "[]" && std::holds_alternative<std::vector<std::string>*>(f.target))
      return {true, true};
    auto sub = [&](auto& stages) -> KeyInfo {
      typename std::remove_reference_t<decltype(stages)>::value_type s;
      for (const Field& g : stage_fields(s))
        if (norm == f.key + "[]." + g.key)
          return {true, std::holds_alternative<std::string*>(g.target)};
      if (norm == f.key + "[]") return {true, false};
      return {};
    };
    KeyInfo k;
    if (auto* p = std::get_if<std::vector<LrStage>*>(&f.target)) k = sub(**p);
    if (auto* p = std::get_if<std::vector<WdStage>*>(&f.target)) k = sub(**p);
    if (auto* p = std::get_if<std::vector<EvalTask>*>(&f.target)) k = sub(**p);
    if (k.known) return k;
  }
  return {};
}

void apply_override(Node& root, const std::string& text, const std::string& top) {
  auto o = std::make_shared<Origin>(
      Origin{fmt::format("{} (--set {})", top, text), fs::current_path(), fs::current_path()});
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    user_error("{}: an override is KEY=VALUE, e.g. --set train.steps=100", o->file);
  std::string path = text.substr(0, eq), value = text.substr(eq + 1);
  std::vector<std::string> segs;
  for (size_t p = 0;;) {
    size_t d = path.find('.', p);
    segs.push_back(path.substr(p, d == std::string::npos ? d : d - p));
    if (d == std::string::npos) break;
    p = d + 1;
  }
  KeyInfo info = key_info(segs);
  if (!info.known) {
    Recipe dummy;
    std::vector<std::string> keys;
    for (const Field& f : recipe_fields(dummy)) keys.push_back(f.key);
    key_error(o->file, path,
              "not a recipe key; " + suggest(path, keys) +
                  " (list items are numbered: schedule.lr.0.peak)");
  }
  Node leaf;
  leaf.origin = o;
  if (info.is_string) {
    leaf.kind = Node::Scalar;
    leaf.scalar = value;
    leaf.quoted = true;
  } else {
    try {
      leaf = from_yaml(YAML::Load(value), o, 0, path);
    } catch (const YAML::Exception& e) {
      key_error(o->file, path, fmt::format("the value is not valid YAML ({})", e.msg));
    }
    leaf.line = 0;
  }
  Node* n = &root;
  std::string so_far;
  for (size_t i = 0; i < segs.size(); i++) {
    const std::string& s = segs[i];
    so_far += (so_far.empty() ? "" : ".") + s;
    bool last = i + 1 == segs.size();
    if (n->kind == Node::Seq) {
      size_t idx = std::stoul(s);
      if (idx >= n->seq.size())
        key_error(o->file, path,
                  fmt::format("{} has {} items; there is no item {}",
                              so_far.substr(0, so_far.rfind('.')), n->seq.size(), idx));
      n = &n->seq[idx];
    } else {
      if (n->kind != Node::Map) *n = Node{Node::Map, "", false, {}, {}, o, 0};
      Node* c = n->find(s);
      if (!c) {
        if (!last && std::isdigit(static_cast<unsigned char>(segs[i + 1][0])))
          key_error(o->file, path,
                    fmt::format("{} is not set in the recipe; set the whole list", so_far));
        n->map.emplace_back(s, Node{Node::Map, "", false, {}, {}, o, 0});
        c = &n->map.back().second;
      }
      n = c;
    }
    if (last) *n = leaf;
  }
}

Recipe build(Node root, const std::string& name, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) apply_override(root, o, name);
  Recipe r;
  r.path = name;
  Binder b(r, name);
  b.bind(root);
  finish(r, b);
  r.locations = b.locations();
  r.text = emit(r);
  return r;
}

}  // namespace

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::exists(path, ec)) user_error("{}: no such recipe file", path);
  std::vector<fs::path> chain{fs::weakly_canonical(path, ec)};
  std::vector<std::string> names{path};
  Node root = load_tree(read_file(path, path), file_origin(path, fs::path(path).parent_path()),
                        chain, names);
  return build(std::move(root), path, overrides);
}

Recipe parse_recipe(const std::string& yaml_text, const std::string& name,
                    const std::vector<std::string>& overrides, const std::string& dir) {
  std::vector<fs::path> chain;
  std::vector<std::string> names{name};
  Node root = load_tree(yaml_text, file_origin(name, dir), chain, names);
  return build(std::move(root), name, overrides);
}

}  // namespace spectra
