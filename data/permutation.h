// A seeded permutation of [0, n) computed one index at a time, with no table: a 6-round Feistel
// network over the smallest even-bit domain >= n, its rounds keyed through Philox, and
// cycle-walking back into [0, n). The loader uses one per dataset and epoch, so the order of
// a billion windows costs no memory and any position can be looked up directly (resume).
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace spectra {

class Permutation {
 public:
  Permutation(uint64_t n, uint64_t key) : n_(n), key_(key) {
    int bits = 2;
    while (bits < 64 && (uint64_t(1) << bits) < n) bits++;
    half_ = (bits + 1) / 2;
    mask_ = (uint64_t(1) << half_) - 1;
  }
  uint64_t operator()(uint64_t i) const {
    uint64_t x = round_trip(i);
    while (x >= n_) x = round_trip(x);  // expected fewer than 4 steps: the domain is < 4n
    return x;
  }
  uint64_t size() const { return n_; }

 private:
  uint64_t round_trip(uint64_t x) const {
    uint64_t l = x >> half_, r = x & mask_;
    for (uint64_t round = 0; round < 6; round++) {
      Philox4 h = philox4x32((round << 32) | r, key_);
      uint64_t f = uint64_t(h.x[0]) | uint64_t(h.x[1]) << 32;
      uint64_t next = l ^ (f & mask_);
      l = r;
      r = next;
    }
    return (l << half_) | r;
  }
  uint64_t n_, key_, mask_;
  int half_;
};

}  // namespace spectra
