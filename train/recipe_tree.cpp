#include "train/recipe_tree.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace spectra::recipe_tree {

void key_error(const std::string& where, const std::string& key, const std::string& what) {
  user_error("{}: key '{}': {}", where, key, what);
}

namespace {
int mark_line(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }
}  // namespace

Node from_yaml(const YAML::Node& y, const OriginPtr& o, int line, const std::string& path) {
  Node n;
  n.origin = o;
  n.line = line ? line : mark_line(y.Mark());
  switch (y.Type()) {
    case YAML::NodeType::Scalar:
      n.kind = Node::Scalar;
      n.scalar = y.Scalar();
      n.quoted = y.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Seq;
      for (size_t i = 0; i < y.size(); i++)
        n.seq.push_back(from_yaml(y[i], o, 0, fmt::format("{}[{}]", path, i)));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Map;
      for (const auto& kv : y) {
        int kline = mark_line(kv.first.Mark());
        std::string where = fmt::format("{}:{}", o->file, kline);
        if (!kv.first.IsScalar())
          user_error(
              "{}: a key under '{}' is not a plain name; recipe keys are words like 'hidden'",
              where, path.empty() ? "the top level" : path);
        std::string key = kv.first.Scalar();
        std::string full = path.empty() ? key : path + "." + key;
        if (const Node* prev = n.find(key))
          key_error(where, full,
                    fmt::format("appears twice (also on line {}); keep one", prev->line));
        n.map.emplace_back(key, from_yaml(kv.second, o, kline, full));
      }
      break;
    default:
      break;  // Null (and Undefined, which yaml-cpp never returns from parsing)
  }
  return n;
}

namespace {
// The nearest ancestor of `dir` (itself included) that holds a recipes/ folder, else the cwd.
fs::path project_root(const fs::path& dir) {
  std::error_code ec;
  for (fs::path p = dir;; p = p.parent_path()) {
    if (fs::is_directory(p / "recipes", ec)) return p;
    if (p == p.parent_path()) break;
  }
  return fs::current_path();
}
}  // namespace

OriginPtr file_origin(const std::string& name, const fs::path& dir) {
  fs::path abs = fs::absolute(dir.empty() ? fs::path(".") : dir).lexically_normal();
  return std::make_shared<Origin>(Origin{name, abs, project_root(abs)});
}

namespace {
// `over` replaces `base` except where both are mappings: those merge key by key.
void merge_into(Node& base, Node&& over) {
  if (base.kind == Node::Map && over.kind == Node::Null) return;  // an empty section adds nothing
  if (base.kind != Node::Map || over.kind != Node::Map) {
    base = std::move(over);
    return;
  }
  for (auto& [k, v] : over.map) {
    if (Node* b = base.find(k))
      merge_into(*b, std::move(v));
    else
      base.map.emplace_back(k, std::move(v));
  }
}
}  // namespace

std::string read_file(const fs::path& path, const std::string& name) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    user_error("{}: is a directory, not a recipe; name a .yaml file", name);
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("{}: cannot read recipe: {}", name, std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Node load_tree(const std::string& text, const OriginPtr& o, std::vector<fs::path>& chain,
               std::vector<std::string>& chain_names) {
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    user_error("{}:{}:{}: malformed YAML: {}; fix the syntax there", o->file, e.mark.line + 1,
               e.mark.column + 1, e.msg);
  }
  Node root = from_yaml(y, o, 0, "");
  if (root.kind == Node::Null) root.kind = Node::Map;  // an empty file
  if (root.kind != Node::Map)
    user_error("{}:{}: a recipe is a mapping of sections (model:, data:, train:, ...), not a {}",
               o->file, root.line, root.kind == Node::Seq ? "list" : "single value");

  auto it =
      std::find_if(root.map.begin(), root.map.end(), [](auto& kv) { return kv.first == "base"; });
  if (it == root.map.end()) return root;
  const Node& b = it->second;
  if (b.kind != Node::Scalar || b.scalar.empty())
    key_error(b.where(), "base", "must be the path of another recipe (relative to this file)");
  fs::path rel(b.scalar);
  fs::path path = rel.is_absolute() ? rel : o->dir / rel;
  std::string name = rel.is_absolute()
                         ? rel.string()
                         : (fs::path(o->file).parent_path() / rel).lexically_normal().string();
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(path, ec);
  if (std::find(chain.begin(), chain.end(), canon) != chain.end()) {
    std::string cycle;
    for (const std::string& n : chain_names) cycle += n + " -> ";
    key_error(b.where(), "base",
              fmt::format("'{}' makes a cycle ({}{}); remove one of the base: links", b.scalar,
                          cycle, name));
  }
  if (!fs::is_regular_file(path, ec))
    key_error(b.where(), "base",
              fmt::format("'{}' ({}) is not a readable file; give a path relative to this file's "
                          "directory",
                          b.scalar, path.lexically_normal().string()));
  chain.push_back(canon);
  chain_names.push_back(name);
  Node merged =
      load_tree(read_file(path, name), file_origin(name, path.parent_path()), chain, chain_names);
  chain.pop_back();
  chain_names.pop_back();
  root.map.erase(it);
  merge_into(merged, std::move(root));
  return merged;
}

}  // namespace spectra::recipe_tree
