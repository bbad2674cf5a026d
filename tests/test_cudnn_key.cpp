// The cache key of model.attention: cudnn (kernels/cuda/cudnn_graph_key.h): one cuDNN graph per
// (dtype, B, H, Tq, Tk, Dh, causal, direction, device), so equal keys must compare and hash
// equal, and keys differing in any field must be distinct in an unordered_map.
#include <gtest/gtest.h>

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kernels/cuda/cudnn_graph_key.h"

using spectra::DType;
using spectra::kernels::cuda::CudnnGraphKey;
using spectra::kernels::cuda::CudnnGraphKeyHash;

namespace {

CudnnGraphKey base() {
  CudnnGraphKey k;
  k.dtype = DType::bf16;
  k.b = 2;
  k.h = 3;
  k.tq = 64;
  k.tk = 64;
  k.dh = 128;
  k.causal = true;
  k.backward = false;
  k.device = 0;
  return k;
}

// `base()` with exactly one field changed, once per field.
std::vector<CudnnGraphKey> one_field_changed() {
  std::vector<CudnnGraphKey> v;
  auto add = [&](auto change) {
    CudnnGraphKey k = base();
    change(k);
    v.push_back(k);
  };
  add([](CudnnGraphKey& k) { k.dtype = DType::f16; });
  add([](CudnnGraphKey& k) { k.b = 1; });
  add([](CudnnGraphKey& k) { k.h = 4; });
  add([](CudnnGraphKey& k) { k.tq = 65; });
  add([](CudnnGraphKey& k) { k.tk = 65; });
  add([](CudnnGraphKey& k) { k.dh = 64; });
  add([](CudnnGraphKey& k) { k.causal = false; });
  add([](CudnnGraphKey& k) { k.backward = true; });
  add([](CudnnGraphKey& k) { k.device = 1; });
  return v;
}

}  // namespace

TEST(CudnnGraphKey, EqualKeysCompareAndHashEqual) {
  CudnnGraphKeyHash hash;
  EXPECT_EQ(base(), base());
  EXPECT_EQ(hash(base()), hash(base()));
  CudnnGraphKey copy = base();
  EXPECT_EQ(copy, base());
}

TEST(CudnnGraphKey, EveryFieldMakesADistinctKey) {
  CudnnGraphKeyHash hash;
  for (const CudnnGraphKey& k : one_field_changed()) {
    EXPECT_FALSE(k == base());
    EXPECT_NE(hash(k), hash(base()));  // not required of a hash, but a good one mixes every field
  }
}

TEST(CudnnGraphKey, MapKeepsOneEntryPerShapeDtypeAndDirection) {
  std::unordered_map<CudnnGraphKey, int, CudnnGraphKeyHash> cache;
  cache[base()] = 1;
  cache[base()] = 2;  // the same key: reused, not added
  EXPECT_EQ(cache.size(), 1u);
  for (const CudnnGraphKey& k : one_field_changed()) cache[k] = 3;
  EXPECT_EQ(cache.size(), 1u + one_field_changed().size());
  EXPECT_EQ(cache.at(base()), 2);
}

TEST(CudnnGraphKey, SequenceLengthsDoNotCollide) {
  // The shapes a training run and the GPU test build: all distinct, in both directions.
  std::unordered_set<CudnnGraphKey, CudnnGraphKeyHash> keys;
  std::unordered_set<size_t> hashes;
  CudnnGraphKeyHash hash;
  int n = 0;
  for (DType dt : {DType::bf16, DType::f16})
    for (int64_t t : {1, 7, 64, 65, 129, 300, 1000, 2048, 4096})
      for (int64_t dh : {64, 128})
        for (bool bwd : {false, true}) {
          CudnnGraphKey k = base();
          k.dtype = dt;
          k.tq = k.tk = t;
          k.dh = dh;
          k.backward = bwd;
          keys.insert(k);
          hashes.insert(hash(k));
          n++;
        }
  EXPECT_EQ(keys.size(), size_t(n));
  EXPECT_EQ(hashes.size(), size_t(n));
  // Swapping Tq and Tk is a different graph (the causal diagonal moves).
  CudnnGraphKey a = base(), b = base();
  a.tq = 32;
  b.tk = 32;
  EXPECT_FALSE(a == b);
}
