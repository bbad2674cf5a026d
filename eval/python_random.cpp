#include "eval/python_random.h"

#include <bit>
#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace spectra {

namespace {
constexpr size_t kN = 624, kM = 397;
}

// CPython's init_genrand(19650218) then init_by_array(key): the reference MT19937 seeding.
PythonRandom::PythonRandom(uint64_t seed) {
  std::vector<uint32_t> key;
  for (uint64_t s = seed; s != 0; s >>= 32) key.push_back(uint32_t(s));  // little-endian words
  if (key.empty()) key.push_back(0);
  mt_[0] = 19650218u;
  for (size_t i = 1; i < kN; i++)
    mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  size_t i = 1, j = 0;
  for (size_t k = std::max(kN, key.size()); k > 0; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + uint32_t(j);
    if (++i >= kN) mt_[0] = mt_[kN - 1], i = 1;
    if (++j >= key.size()) j = 0;
  }
  for (size_t k = kN - 1; k > 0; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
    if (++i >= kN) mt_[0] = mt_[kN - 1], i = 1;
  }
  mt_[0] = 0x80000000u;  // the most significant bit is 1: a non-zero initial state
}

uint32_t PythonRandom::next_u32() {
  if (index_ >= kN) {  // the next 624 words at once
    auto twist = [&](size_t a, size_t b, size_t c) {
      const uint32_t y = (mt_[a] & 0x80000000u) | (mt_[b] & 0x7fffffffu);
      mt_[a] = mt_[c] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    };
    for (size_t k = 0; k < kN - kM; k++) twist(k, k + 1, k + kM);
    for (size_t k = kN - kM; k < kN - 1; k++) twist(k, k + 1, k + kM - kN);
    twist(kN - 1, 0, kM - 1);
    index_ = 0;
  }
  uint32_t y = mt_[index_++];  // tempering
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

uint32_t PythonRandom::getrandbits(int bits) {
  SPECTRA_CHECK(bits > 0 && bits <= 32, "getrandbits({}) takes 1 to 32 bits here", bits);
  return next_u32() >> (32 - bits);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
  SPECTRA_CHECK(n > 0 && n <= (uint64_t(1) << 32), "randbelow({}) takes 1 to 2^32", n);
  const int bits = std::bit_width(n);  // n.bit_length(): not n - 1, so n = 1 works
  uint64_t r = bits > 32 ? uint64_t(next_u32()) : getrandbits(bits);
  while (r >= n) r = bits > 32 ? uint64_t(next_u32()) : getrandbits(bits);
  return r;
}

double PythonRandom::random() {
  const uint32_t a = next_u32() >> 5, b = next_u32() >> 6;  // genrand_res53
  return (double(a) * 67108864.0 + double(b)) * (1.0 / 9007199254740992.0);
}

std::vector<size_t> PythonRandom::sample(size_t n, size_t k) {
  SPECTRA_CHECK(k <= n, "sample of {} from {}", k, n);
  // Python keeps a list of the population when that is smaller than a set of k indices.
  size_t setsize = 21;
  if (k > 5) setsize += size_t(std::pow(4.0, std::ceil(std::log(double(k * 3)) / std::log(4.0))));
  std::vector<size_t> out(k);
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; i++) pool[i] = i;
    for (size_t i = 0; i < k; i++) {
      const size_t j = size_t(randbelow(n - i));
      out[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; i++) {
      size_t j = size_t(randbelow(n));
      while (selected.count(j)) j = size_t(randbelow(n));
      selected.insert(j);
      out[i] = j;
    }
  }
  return out;
}

}  // namespace spectra
