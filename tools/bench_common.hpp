// tools/bench_common.hpp — what more than one benchmark measures the same way.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace galvani::bench {

// The machine's copy bandwidth, as ../shared/bench/torch_gpt2_baseline.py's machine section
// measures it: a parallel memcpy of `mib` MiB (OpenMP threads, 64 static chunks), counted as
// read + write bytes (2 · mib MiB per copy), one untimed warm-up. GB/s (1e9 bytes) per rep.
// The ceiling a streaming kernel (a decode step's GEMV) is compared with.
inline std::vector<double> copy_bandwidth_gbps(int reps, int64_t mib = 256) {
  const int64_t numel = mib * (int64_t(1) << 20) / 4;
  std::vector<float> src(size_t(numel), 1.0f), dst(size_t(numel), 0.0f);
  auto copy = [&] {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < 64; ++c) {
      const int64_t lo = numel * c / 64, hi = numel * (c + 1) / 64;
      std::memcpy(dst.data() + lo, src.data() + lo, size_t(hi - lo) * 4);
    }
  };
  copy();
  std::vector<double> bw;
  for (int i = 0; i < reps; ++i) {
    const auto t = std::chrono::steady_clock::now();
    copy();
    bw.push_back(2.0 * double(numel) * 4 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count() / 1e9);
  }
  return bw;
}

// The median of a non-empty sample (the upper one of an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace galvani::bench
