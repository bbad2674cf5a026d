#include "data/bpe.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"
#include "data/bytelevel.h"

namespace spectra {

namespace {
inline uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Words already encoded by this thread. Bounded: cleared when full (text repeats its common words
// quickly, so a cleared cache refills with them).
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};
constexpr size_t kCacheEntries = 1 << 17;
constexpr size_t kCacheMaxWord = 256;  // longer words are rare and not worth keeping

std::atomic<uint64_t> next_instance{1};

struct Symbol {
  int32_t id, prev, next;
  bool gone;
};
struct Candidate {
  int32_t rank, pos, new_id;
  // std::priority_queue pops the largest: the lowest rank, then the leftmost position.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};
}  // namespace

Bpe::Bpe(const std::unordered_map<std::string, int32_t>& vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
         const std::string& where)
    : options_(options), instance_(next_instance++) {
  for (int b = 0; b < 256; b++) {
    auto it = vocab.find(bytelevel::char_of(uint8_t(b)));
    byte_id_[size_t(b)] = it == vocab.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); r++) {
    const auto& [a, b] = merges[r];
    auto ia = vocab.find(a), ib = vocab.find(b), ic = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end())
      user_error("{}: merge {} ('{}' '{}') names a token missing from model.vocab", where, r, a, b);
    if (ic == vocab.end())
      user_error("{}: merge {} ('{}' '{}') makes '{}', which is missing from model.vocab", where, r,
                 a, b, a + b);
    // A pair listed twice keeps its last rank, as HF's HashMap collect does.
    merges_[pair_key(ia->second, ib->second)] = {int32_t(r), ic->second};
  }
  if (options_.ignore_merges) whole_words_ = vocab;
}

void Bpe::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (options_.ignore_merges) {
    auto it = whole_words_.find(bytelevel::encode(bytes));
    if (it != whole_words_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> sym;
  sym.reserve(bytes.size());
  bool pending_unk = false;
  auto push = [&](int32_t id) {
    int32_t n = int32_t(sym.size());
    sym.push_back({id, n - 1, n + 1, false});
  };
  for (unsigned char b : bytes) {
    int32_t id = byte_id_[b];
    if (id >= 0) {
      if (pending_unk) push(options_.unk_id), pending_unk = false;
      push(id);
    } else if (options_.unk_id >= 0) {
      if (pending_unk && !options_.fuse_unk) push(options_.unk_id);
      pending_unk = true;
    }
    // Without an unk token, HF drops a byte missing from the vocabulary; so does spectra.
  }
  if (pending_unk) push(options_.unk_id);
  if (sym.empty()) return;
  sym.back().next = -1;

  std::vector<Candidate> heap;
  heap.reserve(sym.size());
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < sym.size(); i++)
    if (auto m = lookup(sym[i].id, sym[i + 1].id))
      heap.push_back({m->first, int32_t(i), m->second});
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& cur = sym[size_t(top.pos)];
    if (cur.gone || cur.next < 0) continue;
    Symbol& right = sym[size_t(cur.next)];
    // A stale entry: one of the two symbols has changed since it was queued.
    auto m = lookup(cur.id, right.id);
    if (!m || m->second != top.new_id) continue;
    cur.id = top.new_id;
    right.gone = true;
    cur.next = right.next;
    if (right.next >= 0) sym[size_t(right.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (auto p = lookup(sym[size_t(cur.prev)].id, cur.id)) {
        heap.push_back({p->first, cur.prev, p->second});
        std::push_heap(heap.begin(), heap.end());
      }
    if (cur.next >= 0)
      if (auto n = lookup(cur.id, sym[size_t(cur.next)].id)) {
        heap.push_back({n->first, top.pos, n->second});
        std::push_heap(heap.begin(), heap.end());
      }
  }
  for (const Symbol& s : sym)
    if (!s.gone) out.push_back(s.id);
}

void Bpe::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1 && byte_id_[static_cast<unsigned char>(bytes[0])] >= 0 &&
      !options_.ignore_merges) {
    out.push_back(byte_id_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  if (bytes.size() > kCacheMaxWord) return merge_word(bytes, out);
  thread_local WordCache cache;
  if (cache.owner != instance_) {
    cache.map.clear();
    cache.owner = instance_;
  }
  auto it = cache.map.find(bytes);
  if (it != cache.map.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t start = out.size();
  merge_word(bytes, out);
  if (cache.map.size() >= kCacheEntries) cache.map.clear();
  cache.map.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + long(start), out.end()));
}

}  // namespace spectra
