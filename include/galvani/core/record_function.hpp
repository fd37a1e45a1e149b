// core/record_function.hpp — the recording half of the profiler (core/profiler.hpp): the timed
// scope every op and autograd Node opens (torch.autograd.profiler.record_function, ATen's
// RecordFunction), and the process-wide event list it appends to while a profiler::Profile is
// active. core/dispatch.hpp and the backward engine include only this; the Profile that starts
// and stops recording, sums the events and writes tables and Chrome traces is core/profiler.hpp.
// Semantics, costs and threading: core/profiler.hpp's header.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace galvani::profiler {

// One recorded interval. Times in microseconds since the Profile started.
struct FunctionEvent {
  std::string name;      // the op or scope name ("matmul", "autograd: matmul", "backward")
  double start_us = 0;   // start, µs after Profile's construction
  double duration_us = 0;
  double self_us = 0;    // duration less the direct children's durations on this thread
  int thread = 0;        // 0 for the thread that made the Profile, then 1, 2, … by first event
  int depth = 0;         // nesting level on its thread (0: outermost)
};

namespace detail {

struct State {
  std::atomic<bool> active{false};
  std::mutex mutex;  // guards everything below
  std::chrono::steady_clock::time_point t0;
  std::vector<FunctionEvent> events;
  int64_t dropped = 0;
  int next_thread = 0;
  uint64_t generation = 0;  // bumped by each Profile, so stale thread-local stacks reset
};

inline State& state() {
  static State s;
  return s;
}

// Per-thread: its id within the current Profile and the stack of open scopes' child time.
struct ThreadStack {
  uint64_t generation = ~uint64_t(0);
  int thread = 0;
  std::vector<double> child_us;  // Σ durations of finished direct children, one per open scope
};

inline ThreadStack& thread_stack() {
  thread_local ThreadStack s;
  return s;
}

// Events kept per Profile; more are counted as dropped.
inline constexpr size_t kMaxEvents = size_t(4) << 20;

inline bool active() noexcept { return state().active.load(std::memory_order_relaxed); }

}  // namespace detail

// A timed scope (torch.autograd.profiler.record_function): from construction to destruction,
// recorded under `name` (or `prefix` + `name`) if a Profile is active when it opens; nothing
// otherwise. Not copyable or movable; open and close it on one thread.
class RecordFunction {
 public:
  explicit RecordFunction(std::string_view name) noexcept {
    if (detail::active()) open(std::string_view{}, name);
  }
  RecordFunction(std::string_view prefix, std::string_view name) noexcept {
    if (detail::active()) open(prefix, name);
  }
  RecordFunction(const RecordFunction&) = delete;
  RecordFunction& operator=(const RecordFunction&) = delete;
  ~RecordFunction() {
    if (open_) close();
  }

 private:
  void open(std::string_view prefix, std::string_view name) noexcept {
    try {
      detail::State& st = detail::state();
      detail::ThreadStack& ts = detail::thread_stack();
      {
        std::lock_guard<std::mutex> lock(st.mutex);
        if (!st.active.load(std::memory_order_relaxed)) return;
        if (ts.generation != st.generation) {  // first scope of this thread in this Profile
          ts.generation = st.generation;
          ts.thread = st.next_thread++;
          ts.child_us.clear();
        }
        generation_ = st.generation;
      }
      name_.reserve(prefix.size() + name.size());
      name_.append(prefix).append(name);
      ts.child_us.push_back(0);
      open_ = true;
      start_ = std::chrono::steady_clock::now();
    } catch (...) {  // out of memory for a name: profiling must never change the program
      open_ = false;
    }
  }

  void close() noexcept {
    const auto end = std::chrono::steady_clock::now();
    detail::State& st = detail::state();
    detail::ThreadStack& ts = detail::thread_stack();
    if (ts.generation != generation_ || ts.child_us.empty()) return;  // a newer Profile began
    const double children = ts.child_us.back();
    ts.child_us.pop_back();
    const int depth = int(ts.child_us.size());
    std::lock_guard<std::mutex> lock(st.mutex);
    if (st.generation != generation_) return;
    const double dur = std::chrono::duration<double, std::micro>(end - start_).count();
    if (!ts.child_us.empty()) ts.child_us.back() += dur;
    if (!st.active.load(std::memory_order_relaxed)) return;  // stopped while open: not kept
    if (st.events.size() >= detail::kMaxEvents) {
      ++st.dropped;
      return;
    }
    try {
      st.events.push_back(FunctionEvent{std::move(name_),
                                        std::chrono::duration<double, std::micro>(start_ - st.t0).count(), dur,
                                        std::max(0.0, dur - children), ts.thread, depth});
    } catch (...) {
      ++st.dropped;
    }
  }

  bool open_ = false;
  uint64_t generation_ = 0;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace galvani::profiler
