// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A draw is a pure function of
// (key, counter), so the CPU and the GPU produce identical numbers for the same indices, any
// element can be drawn independently of the others (layout-independent initialization), and a
// generator's whole state is two integers (checkpoints).
#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>

#include "core/hd.h"

namespace spectra {

struct Philox4 {
  uint32_t x[4];
};

SPECTRA_HD Philox4 philox4x32(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// A uniform float in (0, 1] from 32 random bits (never 0, so log() is safe).
SPECTRA_HD float uniform_from_bits(uint32_t b) {
  return (float(b >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

// Element `index` of the standard normal stream `key` (Box-Muller on the first two words).
// Computed in double on the host and device alike so both round identically.
SPECTRA_HD float philox_normal(uint64_t key, uint64_t index) {
  Philox4 r = philox4x32(index, key);
  double u1 = (double(r.x[0]) + 1.0) / 4294967296.0, u2 = double(r.x[1]) / 4294967296.0;
  return float(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

SPECTRA_HD float philox_uniform(uint64_t key, uint64_t index) {
  return uniform_from_bits(philox4x32(index, key).x[0]);
}

// 64-bit FNV-1a: turns a parameter name into a stream key, so a parameter's initial values depend
// on the seed and its name only, never on creation order or the parallel layout.
inline uint64_t hash_name(std::string_view s, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// A sequential host generator over the same function: its state is (key, counter).
struct Rng {
  uint64_t key = 0, counter = 0;
  uint64_t next_u64() {
    Philox4 r = philox4x32(counter++, key);
    return (uint64_t(r.x[0]) << 32) | r.x[1];
  }
  double uniform() { return (double(next_u64() >> 11) + 0.5) / 9007199254740992.0; }  // (0,1)
  uint64_t below(uint64_t n) { return next_u64() % n; }  // n << 2^64: bias negligible
};

}  // namespace spectra
