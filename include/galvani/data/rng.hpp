// data/rng.hpp — the seeded random numbers of the data layer (split, sample).
//
// std::shuffle and std::uniform_int_distribution give different results on
// libstdc++, libc++ and MSVC, so a seed would not name the same split
// everywhere. galvani draws its own: SplitMix64 (Steele, Lea & Flood 2014; the
// generator Java's SplittableRandom and xoshiro's seeding use) for the bits,
// rejection of the few draws that would bias a modulo for an unbiased integer below a bound, and a
// Fisher–Yates shuffle. Same seed, same numbers, on every platform.
//
// These are not numpy's numbers: a seed here does not give the rows that
// sklearn's train_test_split(random_state=seed) or df.sample(random_state=seed)
// would pick. The sizes match; the choice of rows is galvani's own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace galvani {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound), bound > 0, without modulo bias: draws below
  // 2^64 mod bound are rejected, so every residue is equally likely.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    uint64_t r = next();
    while (r < threshold) r = next();
    return r % bound;
  }

 private:
  uint64_t state_;
};

// Fisher–Yates: every order of `v` equally likely, decided by `rng` alone.
template <class T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// 0..n-1 in a seeded random order.
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  SplitMix64 rng(seed);
  shuffle(idx, rng);
  return idx;
}

}  // namespace galvani
