// train/progress.hpp — a terminal progress bar with loss, lr, tokens/s and ETA.
//
//   train  42% |████████▍           | 126/300 loss 4.213 lr 1.3e-05 1520 tok/s ETA 1m54s
// On a terminal it redraws one line (at most 10 times a second); in a log file
// or CI it prints a plain line every 5% instead, so logs stay readable.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace galvani {

inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;
  ProgressBar(std::string label, int64_t total, FILE* out = stderr, bool enabled = true)
      : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), out_(out), enabled_(enabled),
        tty_(isatty(fileno(out))),
        start_(Clock::now()), last_draw_(start_ - std::chrono::seconds(1)) {}

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // A resumed run starts at `done`: the ETA counts only the work done since.
  void resume_from(int64_t done) { first_ = done; }

  // `info` is appended after the counter, e.g. "loss 4.213 lr 1.3e-05 1520 tok/s".
  void update(int64_t done, const std::string& info = "") {
    if (!enabled_) return;
    const auto now = Clock::now();
    const bool last = done >= total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
      const int64_t bucket = done * 20 / total_;  // every 5%
      if (!last && bucket == last_bucket_) return;
      last_bucket_ = bucket;
    }
    last_draw_ = now;
    const double frac = double(done) / double(total_);
    const double el = elapsed();
    const double eta = done > first_ ? el / double(done - first_) * double(total_ - done) : -1;
    std::string bar;
    if (tty_) {
      constexpr int width = 20;
      static const char* parts[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
      const double cells = frac * width;
      const int full = int(cells);
      for (int i = 0; i < full; ++i) bar += "█";
      if (full < width) {
        bar += parts[int((cells - full) * 8)];
        bar += std::string(size_t(width - full - 1), ' ');
      }
      bar = " |" + bar + "|";
    }
    std::fprintf(out_, "%s%s %3d%%%s %lld/%lld %s %s %s", tty_ ? "\r\033[K" : "", label_.c_str(), int(frac * 100),
                 bar.c_str(), (long long)done, (long long)total_, info.c_str(), last ? "in" : "ETA",
                 format_duration(last ? el : eta).c_str());
    std::fprintf(out_, tty_ && !last ? "" : "\n");
    std::fflush(out_);
  }

 private:
  std::string label_;
  int64_t total_;
  FILE* out_;
  bool enabled_;
  bool tty_;
  Clock::time_point start_, last_draw_;
  int64_t last_bucket_ = -1;
  int64_t first_ = 0;
};

}  // namespace galvani
