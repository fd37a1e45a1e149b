// core/profiler.hpp — where the time goes, op by op: torch.profiler's CPU side, by hand.
//
//   {
//     profiler::Profile prof;                        // torch.profiler.profile(): recording starts
//     Tensor loss = causal_lm_loss(model.forward(ids), ids);
//     {
//       profiler::RecordFunction scope("backward");  // torch.autograd.profiler.record_function
//       loss.backward();
//     }
//     prof.stop();                                   // or leave the block
//     std::fputs(prof.table("self_cpu_time_total", 20).c_str(), stderr);
//     prof.export_chrome_trace("trace.json");        // chrome://tracing or ui.perfetto.dev
//   }
//
// What is recorded while a Profile is active:
//   - every op's kernel, named as the op names itself in dispatch() (core/dispatch.hpp):
//     "matmul", "layer_norm backward", "cross_entropy", "AdamW", …  (torch: "aten::mm", …);
//   - every autograd Node the backward engine runs, as "autograd: <op>" (torch:
//     "autograd::engine::evaluate_function: MmBackward0"); the kernels it calls are recorded
//     inside it, so its self time is the glue around them (allocation, views); adding the
//     gradients it returns into others ("backward (accumulate)", "copy") is recorded apart;
//   - every RecordFunction scope a program opens (bench_train: "forward", "loss", "backward",
//     "optimizer.step", "optimizer.zero_grad").
// Each event has a start and a duration in wall-clock microseconds (steady_clock) on the thread
// that opened it. An event's self time is its duration less its direct children's durations on
// the same thread, as torch's profiler computes it, so the self times of all events add up to
// the time spent inside the outermost scopes. OpenMP worker threads are not recorded separately:
// an op's time is the wall time of its parallel region, seen from the calling thread
// (torch's CPU profiler reports the same for intra-op parallelism).
//
// Cost: with no Profile active, a scope reads one atomic flag (relaxed) and does nothing else;
// the op names are string literals or the Node's own string, never formatted. With a Profile
// active, about two clock reads and one vector push per event; events beyond
// Profile::kMaxEvents (4 Mi) are counted, not kept (the table says how many).
//
// The recording flag and the event list are process-wide state, as torch's profiler's are (the
// design notes allow only the grad mode and the thread-pool size, and the ISA level, besides):
// they do nothing unless a Profile is alive.
// One Profile at a time per process (torch: "profiler already enabled"); a second throws
// galvani::Error. Scopes on other threads than the Profile's are recorded too (each thread
// keeps its own nesting stack; the event list is shared under a mutex).
//
// Two headers: core/record_function.hpp is the recording half (RecordFunction, FunctionEvent,
// the event list), all that core/dispatch.hpp and the engine include, so every op's header
// stays light; this one adds the Profile, its tables and the Chrome trace (nlohmann/json).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "record_function.hpp"

namespace galvani::profiler {

// The events of one name, summed: torch.autograd.profiler_util.FunctionEventAvg's CPU fields.
struct FunctionEventAvg {
  std::string key;                   // the name
  int64_t count = 0;                 // number of events
  double cpu_time_total = 0;         // Σ durations, µs ("CPU total")
  double self_cpu_time_total = 0;    // Σ self times, µs ("Self CPU")
  double cpu_time() const { return count ? cpu_time_total / double(count) : 0; }  // µs per call
};

// A recording session (torch.profiler.profile with activities=[CPU]): records from
// construction until stop() or destruction; the results stay readable after stop().
// Throws galvani::Error if another Profile is recording.
class Profile {
 public:
  static constexpr size_t kMaxEvents = detail::kMaxEvents;

  Profile() {
    detail::State& st = detail::state();
    std::lock_guard<std::mutex> lock(st.mutex);
    if (st.active.load())
      throw Error("profiler::Profile: a profile is already recording (one at a time; stop() the other first)");
    st.events.clear();
    st.dropped = 0;
    st.next_thread = 0;
    ++st.generation;
    st.t0 = std::chrono::steady_clock::now();
    detail::ThreadStack& ts = detail::thread_stack();  // the constructing thread is thread 0
    ts.generation = st.generation;
    ts.thread = st.next_thread++;
    ts.child_us.clear();
    recording_ = true;
    st.active.store(true);
  }
  Profile(const Profile&) = delete;
  Profile& operator=(const Profile&) = delete;
  ~Profile() { stop(); }

  // Stops recording and takes the events (scopes still open are not recorded). Idempotent.
  void stop() {
    if (!recording_) return;
    detail::State& st = detail::state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.active.store(false);
    events_ = std::move(st.events);
    st.events.clear();
    dropped_ = st.dropped;
    recording_ = false;
  }

  // Every event, in the order they ended. Call after stop().
  const std::vector<FunctionEvent>& events() const {
    check_stopped("events");
    return events_;
  }
  // Events recorded beyond kMaxEvents, counted and not kept. Call after stop().
  int64_t dropped() const {
    check_stopped("dropped");
    return dropped_;
  }

  // The events grouped by name (torch: prof.key_averages()), in order of first appearance.
  std::vector<FunctionEventAvg> key_averages() const {
    check_stopped("key_averages");
    std::vector<FunctionEventAvg> out;
    std::unordered_map<std::string, size_t> index;
    for (const FunctionEvent& e : events_) {
      auto [it, fresh] = index.try_emplace(e.name, out.size());
      if (fresh) out.push_back(FunctionEventAvg{e.name});
      FunctionEventAvg& a = out[it->second];
      ++a.count;
      a.cpu_time_total += e.duration_us;
      a.self_cpu_time_total += e.self_us;
    }
    return out;
  }

  // Σ self times of all events, µs: the time spent inside the outermost scopes.
  double self_cpu_time_total() const {
    check_stopped("self_cpu_time_total");
    double s = 0;
    for (const FunctionEvent& e : events_) s += e.self_us;
    return s;
  }

  // key_averages() as torch's table(): Name, Self CPU %, Self CPU, CPU total %, CPU total,
  // CPU time avg, # of Calls; percentages of self_cpu_time_total(). sort_by is one of
  // "self_cpu_time_total" (default), "cpu_time_total", "cpu_time" (average) or "count",
  // descending; row_limit < 0 prints every row. Throws galvani::Error for another sort_by.
  std::string table(std::string_view sort_by = "self_cpu_time_total", int row_limit = -1) const {
    std::vector<FunctionEventAvg> rows = key_averages();
    auto key = [&](const FunctionEventAvg& a) -> double {
      if (sort_by == "self_cpu_time_total") return a.self_cpu_time_total;
      if (sort_by == "cpu_time_total") return a.cpu_time_total;
      if (sort_by == "cpu_time") return a.cpu_time();
      return double(a.count);
    };
    if (sort_by != "self_cpu_time_total" && sort_by != "cpu_time_total" && sort_by != "cpu_time" &&
        sort_by != "count")
      throw Error(std::string("profiler table: unknown sort_by '") + std::string(sort_by) +
                  "' (self_cpu_time_total, cpu_time_total, cpu_time or count)");
    std::stable_sort(rows.begin(), rows.end(),
                     [&](const FunctionEventAvg& a, const FunctionEventAvg& b) { return key(a) > key(b); });
    const double total = self_cpu_time_total();
    size_t name_w = 4;
    const size_t shown = row_limit < 0 ? rows.size() : std::min(rows.size(), size_t(row_limit));
    for (size_t i = 0; i < shown; ++i) name_w = std::max(name_w, rows[i].key.size());
    name_w = std::min<size_t>(name_w, 48);
    auto time_str = [](double us) {
      char b[32];
      if (us >= 1e6) std::snprintf(b, sizeof b, "%.3fs", us / 1e6);
      else if (us >= 1e3) std::snprintf(b, sizeof b, "%.3fms", us / 1e3);
      else std::snprintf(b, sizeof b, "%.3fus", us);
      return std::string(b);
    };
    auto pct = [&](double us) {
      char b[32];
      std::snprintf(b, sizeof b, "%.2f%%", total > 0 ? 100.0 * us / total : 0.0);
      return std::string(b);
    };
    std::string out;
    char line[512];
    const std::string rule = std::string(name_w, '-') + "  " + std::string(6 * 14, '-') + "\n";
    out += rule;
    std::snprintf(line, sizeof line, "%-*s  %12s  %12s  %12s  %12s  %12s  %12s\n", int(name_w), "Name", "Self CPU %",
                  "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls");
    out += line;
    out += rule;
    for (size_t i = 0; i < shown; ++i) {
      const FunctionEventAvg& r = rows[i];
      std::string name = r.key.size() > name_w ? r.key.substr(0, name_w - 3) + "..." : r.key;
      std::snprintf(line, sizeof line, "%-*s  %12s  %12s  %12s  %12s  %12s  %12lld\n", int(name_w), name.c_str(),
                    pct(r.self_cpu_time_total).c_str(), time_str(r.self_cpu_time_total).c_str(),
                    pct(r.cpu_time_total).c_str(), time_str(r.cpu_time_total).c_str(),
                    time_str(r.cpu_time()).c_str(), (long long)r.count);
      out += line;
    }
    out += rule;
    out += "Self CPU time total: " + time_str(total) + "\n";
    if (dropped_ > 0) out += "(" + std::to_string(dropped_) + " events beyond the first 4 Mi were not kept)\n";
    return out;
  }

  // Writes the events as a Chrome trace (the Trace Event Format's complete events, "ph": "X",
  // times in µs), as torch's prof.export_chrome_trace(path); open it in chrome://tracing or
  // https://ui.perfetto.dev. Throws galvani::Error naming the path if it cannot be written.
  void export_chrome_trace(const std::string& path) const {
    check_stopped("export_chrome_trace");
    std::ofstream f(path, std::ios::binary);
    if (!f) throw Error("profiler: cannot write the trace to '" + path + "' (does its folder exist?)");
    f << "{\"traceEvents\": [\n";
    for (size_t i = 0; i < events_.size(); ++i) {
      const FunctionEvent& e = events_[i];
      const nlohmann::json ev = {{"name", e.name}, {"ph", "X"}, {"ts", e.start_us}, {"dur", e.duration_us},
                                 {"pid", 0}, {"tid", e.thread}};
      f << "  " << ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
        << (i + 1 < events_.size() ? ",\n" : "\n");
    }
    f << "], \"displayTimeUnit\": \"ms\"}\n";
    if (!f) throw Error("profiler: writing the trace to '" + path + "' failed (disk full?)");
  }

 private:
  void check_stopped(const char* what) const {
    if (recording_)
      throw Error(std::string("profiler::Profile::") + what + ": call stop() first (the profile is still recording)");
  }
  bool recording_ = false;
  std::vector<FunctionEvent> events_;
  int64_t dropped_ = 0;
};

}  // namespace galvani::profiler
