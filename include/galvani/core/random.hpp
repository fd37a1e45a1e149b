// core/random.hpp — a seeded, counter-based random generator.
//
// Element i of a random tensor is a pure function of (seed, counter + i): a
// splitmix64-style hash, not a sequential stream. So any thread can fill any
// range, and results are identical for 1 or 16 threads. Each draw advances the
// counter by the number of values used, so consecutive draws differ.
// There is no global generator: callers pass one, which keeps runs reproducible.
#pragma once
#include <cmath>
#include <cstdint>
#include <numbers>

#include "dispatch.hpp"
#include "tensor_base.hpp"

namespace galvani {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }

  // The whole state is (seed, counter): saving it and setting it back replays the same
  // draws — torch's get_rng_state / set_rng_state. Gradient checkpointing does this so that
  // the recomputed forward draws the dropout masks of the first one (autograd/checkpoint.hpp).
  struct State {
    uint64_t seed = 0, counter = 0;
    bool operator==(const State&) const = default;
  };
  State state() const { return {seed_, counter_}; }
  void set_state(const State& s) {
    seed_ = s.seed;
    counter_ = s.counter;
  }

  // Reserve n counters; returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t start = counter_;
    counter_ += n;
    return start;
  }

  // The hash behind every draw (splitmix64's finalizer over seed and counter).
  static uint64_t hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  static double uniform01(uint64_t seed, uint64_t i) { return double(hash(seed, i) >> 11) * 0x1.0p-53; }

  // Convenience scalar draws (advance the counter).
  double uniform() { return uniform01(seed_, advance(1)); }
  uint64_t next_u64() { return hash(seed_, advance(1)); }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// U(low, high), filled in parallel; deterministic for a seed.
inline Tensor rand_uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype = DType::f32) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed(), start = gen.advance(uint64_t(n));
  dispatch("rand_uniform", {{"output", t}}, FloatTypes{dtype}, [&]<class T>() {
    T* p = t.data<T>();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) p[i] = T(low + (high - low) * Generator::uniform01(seed, start + uint64_t(i)));
  });
  return t;
}

// N(mean, std²) by Box–Muller: element i uses counters 2i and 2i+1.
inline Tensor rand_normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype = DType::f32) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  const uint64_t seed = gen.seed(), start = gen.advance(2 * uint64_t(n));
  dispatch("rand_normal", {{"output", t}}, FloatTypes{dtype}, [&]<class T>() {
    T* p = t.data<T>();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      double u1 = 1.0 - Generator::uniform01(seed, start + 2 * uint64_t(i));  // (0, 1]: log is finite
      double u2 = Generator::uniform01(seed, start + 2 * uint64_t(i) + 1);
      p[i] = T(mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
    }
  });
  return t;
}

// torch.nn.init.kaiming_uniform_(w, a) with fan_in = w.shape[1] * (receptive field):
// U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a²)). With a = sqrt(5)
// (nn.Linear's and peft's LoRA-A default) b = 1 / sqrt(fan_in).
inline Tensor kaiming_uniform(const Shape& shape, double a, Generator& gen, DType dtype = DType::f32) {
  GALVANI_CHECK(shape.size() >= 2, "kaiming_uniform: need at least 2 dims, got ", shape_str(shape));
  int64_t fan_in = shape[1];
  for (size_t i = 2; i < shape.size(); ++i) fan_in *= shape[i];
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / double(fan_in));
  return rand_uniform(shape, -bound, bound, gen, dtype);
}

}  // namespace galvani
