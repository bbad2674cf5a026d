// Python's random.Random, as far as lm-evaluation-harness uses it to pick few-shot examples:
// the Mersenne Twister seeded as random.seed(int) seeds it (init_by_array over the integer's
// 32-bit words), getrandbits, _randbelow and sample(). Bit for bit CPython 3's, so the same
// seed picks the same examples in the same order as lm-eval's ContextSampler.
//
//   PythonRandom rnd(1234);
//   std::vector<size_t> picked = rnd.sample(pool.size(), 5);  // random.Random(1234).sample
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace spectra {

class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed);

  uint32_t next_u32();             // genrand_uint32
  uint32_t getrandbits(int bits);  // 0 < bits <= 32
  uint64_t randbelow(uint64_t n);  // _randbelow_with_getrandbits, n > 0
  double random();                 // random(): 53 bits in [0, 1)
  // random.sample(range(n), k): k distinct indices in the order Python returns them (its two
  // algorithms, chosen by the same size rule). k <= n.
  std::vector<size_t> sample(size_t n, size_t k);

 private:
  std::array<uint32_t, 624> mt_{};
  size_t index_ = 624;
};

}  // namespace spectra
