// The first pass of recipe loading (train/recipe.cpp): YAML parsed into a tree whose every value
// remembers the file and line it came from, with `base:` chains loaded and merged (this file's
// mappings over its base's, lists and scalars replaced whole). Internal to train/.
#pragma once
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace spectra::recipe_tree {

namespace fs = std::filesystem;

struct Origin {
  std::string file;  // as named to the user: "recipes/trilm/1.1b.yaml" or "x.yaml (--set a=b)"
  fs::path dir;      // absolute: base: and ./ paths resolve against it
  fs::path root;     // absolute: other relative data paths resolve against it
};
using OriginPtr = std::shared_ptr<const Origin>;

struct Node {
  enum Kind { Null, Scalar, Seq, Map } kind = Null;
  std::string scalar;
  bool quoted = false;  // a quoted scalar is a string, never a number
  // Not std::pair: clang with libstdc++ rejects pair<string, Node> inside Node's own definition
  // (deciding whether the pair is default-constructible needs Node complete); gcc defers it.
  struct Entry;
  std::vector<Entry> map;
  std::vector<Node> seq;
  OriginPtr origin;
  int line = 0;  // 1-based; 0: none (created by an override)

  std::string where() const {
    return line > 0 ? fmt::format("{}:{}", origin->file, line) : origin->file;
  }
  Node* find(const std::string& key);
  const Node* find(const std::string& key) const { return const_cast<Node*>(this)->find(key); }
};
struct Node::Entry {  // a key and its value
  std::string first;
  Node second;
};
inline Node* Node::find(const std::string& key) {  // after Entry: it needs Entry complete
  for (auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}

// Throws the UserError every recipe problem ends in: "WHERE: key 'KEY': WHAT".
[[noreturn]] void key_error(const std::string& where, const std::string& key,
                            const std::string& what);

// One YAML node as a tree (path: the key path, for messages).
Node from_yaml(const YAML::Node& y, const OriginPtr& o, int line, const std::string& path);
// The origin of a file named `name` to the user, in directory `dir`.
OriginPtr file_origin(const std::string& name, const fs::path& dir);
// A recipe file's text; UserError naming it when it cannot be read.
std::string read_file(const fs::path& path, const std::string& name);
// Parses one file's text and, when it names a `base:`, loads that first and merges over it.
// `chain` holds the canonical paths of the files being loaded, to detect cycles.
Node load_tree(const std::string& text, const OriginPtr& o, std::vector<fs::path>& chain,
               std::vector<std::string>& chain_names);

}  // namespace spectra::recipe_tree
