// profiler::Profile and RecordFunction (core/profiler.hpp): the op and autograd events of a
// real forward + backward, self vs total time of nested scopes (with sleeps, so only lower
// and upper bounds that a loaded machine cannot break are checked), torch's table layout and
// sort orders, the Chrome trace as JSON, one Profile at a time, and nothing recorded outside.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <galvani/core/profiler.hpp>
#include <galvani/galvani.hpp>
#include <nlohmann/json.hpp>

using namespace galvani;

namespace {

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::map<std::string, profiler::FunctionEventAvg> by_key(const profiler::Profile& p) {
  std::map<std::string, profiler::FunctionEventAvg> m;
  for (const auto& a : p.key_averages()) m[a.key] = a;
  return m;
}

}  // namespace

TEST_CASE("profiler: a forward and backward records each op's kernel and each autograd node") {
  Generator gen(3);
  Tensor x = rand_normal({4, 8}, 0, 1, gen);
  Tensor w = rand_normal({5, 8}, 0, 0.1, gen).requires_grad_();
  profiler::Profile prof;
  {
    profiler::RecordFunction scope("step");
    Tensor y = linear(x, w);
    Tensor loss = mean(y * y);
    loss.backward();
  }
  prof.stop();
  auto m = by_key(prof);
  REQUIRE(m.count("step") == 1);
  CHECK(m["step"].count == 1);
  INFO(prof.table());
  REQUIRE(m.count("linear") == 1);  // the forward product
  CHECK(m["linear"].count == 1);
  CHECK(m.count("mul") == 1);
  REQUIRE(m.count("autograd: linear") == 1);  // the backward engine's nodes
  CHECK(m.count("autograd: mul") == 1);
  REQUIRE(m.count("linear backward") == 1);  // x needs no gradient: only dW's product
  CHECK(m["linear backward"].count == 1);
  CHECK(m["autograd: linear"].cpu_time_total >= m["linear backward"].cpu_time_total);
  // Every event lies inside "step", so its total is the whole; self times add up to it.
  double self_sum = 0;
  for (const auto& [k, a] : m) {
    CHECK(a.self_cpu_time_total <= a.cpu_time_total + 1e-9);
    CHECK(a.self_cpu_time_total >= 0);
    if (k != "step") CHECK(a.cpu_time_total <= m["step"].cpu_time_total + 1e-9);
    self_sum += a.self_cpu_time_total;
  }
  CHECK(self_sum == Approx(m["step"].cpu_time_total).epsilon(1e-6));
  CHECK(prof.self_cpu_time_total() == Approx(self_sum).epsilon(1e-9));
  CHECK(w.grad().defined());
}

TEST_CASE("profiler: self time excludes the children, total includes them") {
  profiler::Profile prof;
  {
    profiler::RecordFunction outer("outer");
    sleep_ms(5);
    for (int i = 0; i < 2; ++i) {
      profiler::RecordFunction inner("inner");
      sleep_ms(20);
    }
  }
  prof.stop();
  auto m = by_key(prof);
  REQUIRE(m.count("outer") == 1);
  REQUIRE(m.count("inner") == 1);
  CHECK(m["inner"].count == 2);
  CHECK(m["inner"].self_cpu_time_total >= 40e3);
  CHECK(m["inner"].cpu_time() >= 20e3);
  CHECK(m["outer"].cpu_time_total >= 45e3);
  CHECK(m["outer"].self_cpu_time_total >= 5e3);
  CHECK(m["outer"].self_cpu_time_total ==
        Approx(m["outer"].cpu_time_total - m["inner"].cpu_time_total).margin(1e-6));
  // depth and order: the inner events end first, at depth 1; outer last, at depth 0
  const auto& ev = prof.events();
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].name == "inner");
  CHECK(ev[0].depth == 1);
  CHECK(ev[2].name == "outer");
  CHECK(ev[2].depth == 0);
  CHECK(ev[2].start_us <= ev[0].start_us);
  CHECK(ev[0].start_us + ev[0].duration_us <= ev[2].start_us + ev[2].duration_us + 1e-6);
}

TEST_CASE("profiler: nothing is recorded outside a Profile or after stop()") {
  Generator gen(1);
  Tensor a = rand_normal({3, 3}, 0, 1, gen);
  {
    profiler::RecordFunction ignored("before");  // no Profile: a no-op
    (void)(a + a);
  }
  profiler::Profile prof;
  { profiler::RecordFunction kept("during"); }
  prof.stop();
  { profiler::RecordFunction ignored("after"); }
  (void)(a * a);
  auto m = by_key(prof);
  CHECK(m.size() == 1);
  CHECK(m.count("during") == 1);
  CHECK(prof.dropped() == 0);
}

TEST_CASE("profiler: a scope left by an exception is recorded and the nesting stays right") {
  profiler::Profile prof;
  {
    profiler::RecordFunction outer("outer");
    try {
      profiler::RecordFunction failing("failing");
      throw Error("boom");
    } catch (const Error&) {
    }
    profiler::RecordFunction after("after");
  }
  prof.stop();
  const auto& ev = prof.events();
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].name == "failing");
  CHECK(ev[0].depth == 1);
  CHECK(ev[1].name == "after");
  CHECK(ev[1].depth == 1);
  CHECK(ev[2].name == "outer");
  CHECK(ev[2].depth == 0);
}

TEST_CASE("profiler: one Profile at a time; results only after stop()") {
  profiler::Profile first;
  CHECK_THROWS_WITH(profiler::Profile(), Catch::Contains("already recording"));
  CHECK_THROWS_WITH(first.key_averages(), Catch::Contains("call stop() first"));
  first.stop();
  first.stop();  // idempotent
  profiler::Profile second;  // allowed once the first stopped
  second.stop();
  CHECK(second.events().empty());
}

TEST_CASE("profiler: table() has torch's columns, sorts, limits rows and refuses unknown keys") {
  profiler::Profile prof;
  {
    profiler::RecordFunction a("long_one");
    sleep_ms(100);
  }
  for (int i = 0; i < 3; ++i) profiler::RecordFunction b("short_many");  // empty scopes: microseconds
  prof.stop();
  const std::string t = prof.table();
  for (const char* col : {"Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"})
    CHECK(t.find(col) != std::string::npos);
  CHECK(t.find("Self CPU time total: ") != std::string::npos);
  CHECK(t.find("long_one") < t.find("short_many"));  // by self time, descending
  const std::string by_count = prof.table("count");
  CHECK(by_count.find("short_many") < by_count.find("long_one"));
  const std::string one = prof.table("self_cpu_time_total", 1);
  CHECK(one.find("long_one") != std::string::npos);
  CHECK(one.find("short_many") == std::string::npos);
  CHECK_THROWS_WITH(prof.table("cuda_time_total"), Catch::Contains("unknown sort_by 'cuda_time_total'"));
}

TEST_CASE("profiler: export_chrome_trace writes the Trace Event Format, and names a bad path") {
  profiler::Profile prof;
  {
    profiler::RecordFunction a("outer \"quoted\"");
    profiler::RecordFunction b("inner");
  }
  prof.stop();
  const auto dir = std::filesystem::temp_directory_path() / "galvani_test_profiler";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "trace.json").string();
  prof.export_chrome_trace(path);
  std::ifstream f(path);
  const nlohmann::json j = nlohmann::json::parse(f);
  REQUIRE(j["traceEvents"].size() == 2);
  CHECK(j["traceEvents"][0]["name"] == "inner");
  CHECK(j["traceEvents"][1]["name"] == "outer \"quoted\"");
  for (const auto& e : j["traceEvents"]) {
    CHECK(e["ph"] == "X");
    CHECK(e["dur"].get<double>() >= 0);
    CHECK(e["tid"] == 0);
  }
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH(prof.export_chrome_trace((dir / "missing" / "t.json").string()),
                    Catch::Contains("missing/t.json"));
}

TEST_CASE("profiler: scopes on another thread keep their own nesting and thread id") {
  profiler::Profile prof;
  std::thread t([] {
    profiler::RecordFunction outer("worker outer");
    profiler::RecordFunction inner("worker inner");
  });
  { profiler::RecordFunction main_scope("main"); }
  t.join();
  prof.stop();
  std::map<std::string, profiler::FunctionEvent> ev;
  for (const auto& e : prof.events()) ev[e.name] = e;
  REQUIRE(ev.size() == 3);
  CHECK(ev["main"].thread == 0);
  CHECK(ev["main"].depth == 0);
  CHECK(ev["worker outer"].thread != 0);
  CHECK(ev["worker inner"].thread == ev["worker outer"].thread);
  CHECK(ev["worker outer"].depth == 0);
  CHECK(ev["worker inner"].depth == 1);
}
