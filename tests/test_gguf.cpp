// GGUF reader (io/gguf.hpp): headers, metadata of every value type, and the dequantization
// of every type against the `gguf` Python package bit for bit, on the fixtures of
// tools/gen_gguf_fixtures.py; every malformed fixture, every truncation and many byte flips
// of a valid file give a galvani::Error naming the problem, never a crash.
//
// Includes only io/gguf.hpp (no Tensor), to keep this test quick to compile.
#include <catch2/catch.hpp>

#include <galvani/io/gguf.hpp>

#include <bit>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>

#include "support/fnv1a.hpp"

using namespace galvani;
using namespace galvani::io;
using galvani::testing::fnv1a64;
namespace fs = std::filesystem;

namespace {

fs::path dir() { return fs::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "gguf"; }

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::string hex32(float f) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", std::bit_cast<uint32_t>(f));
  return buf;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const json& expected() {
  static const json j = json::parse(std::ifstream(dir() / "expected.json"));
  return j;
}

const std::vector<float>& expected_values() {
  static const std::vector<float> v = [] {
    auto b = read_bytes(dir() / "expected_values.f32");
    std::vector<float> out(b.size() / 4);
    std::memcpy(out.data(), b.data(), out.size() * 4);
    return out;
  }();
  return v;
}

// Reads every tensor of a possibly-bad file; any Error is fine, anything else fails the test.
void touch_everything(const GgufFile& g) {
  for (const auto& t : g.tensors()) {
    volatile uint8_t sink = 0;
    for (uint8_t b : g.bytes(t)) sink = sink ^ b;
    if (ggml_can_dequantize(t.type) && t.numel <= (1 << 20)) {
      std::vector<float> out(static_cast<size_t>(t.numel));
      g.dequantize(t, out);
    }
  }
  (void)g.metadata().to_json().dump();
}

}  // namespace

TEST_CASE("GGUF headers: version, alignment, data start and every tensor info as gguf-py reads them", "[io][gguf]") {
  for (const auto& [file, want] : expected()["valid"].items()) {
    INFO("fixture " << file);
    auto g = GgufFile::open(dir() / file);
    CHECK(g.version() == want["version"].get<uint32_t>());
    CHECK(g.alignment() == want["alignment"].get<uint64_t>());
    CHECK(g.data_start() == want["data_start"].get<uint64_t>());
    CHECK(g.file_size() == want["file_size"].get<size_t>());
    REQUIRE(g.size() == want["tensors"].size());
    for (size_t i = 0; i < g.size(); ++i) {
      const auto& t = g.tensors()[i];
      const json& w = want["tensors"][i];
      INFO("tensor " << w["name"]);
      CHECK(t.name == w["name"].get<std::string>());
      CHECK(std::string(t.type_name()) == w["type"].get<std::string>());
      CHECK(uint32_t(t.type) == w["type_id"].get<uint32_t>());
      CHECK(t.ne == w["ne"].get<std::vector<int64_t>>());
      CHECK(t.shape == w["shape"].get<Shape>());
      CHECK(t.offset == w["offset"].get<uint64_t>());
      CHECK(t.nbytes == w["nbytes"].get<uint64_t>());
      CHECK(g.contains(t.name));
      CHECK(&g.tensor(t.name) == &t);
    }
  }
  auto g = GgufFile::open(dir() / "all_types.gguf");
  CHECK(g.tensor("f32").shape == Shape{2, 3, 4});     // ggml ne [4, 3, 2], reversed
  CHECK(g.tensor("q8_0.4d").shape == Shape{2, 1, 3, 32});
  CHECK(g.tensor("q8_0.4d").ne == std::vector<int64_t>{32, 3, 1, 2});
  CHECK(g.tensor("q4_k.random").numel == 3 * 512);
  CHECK(g.tensor("q4_k.random").nbytes == 3 * 2 * 144);
  auto e = GgufFile::open(dir() / "edge_v2.gguf");
  CHECK(e.tensor("scalar").shape.empty());   // n_dims 0: one element
  CHECK(e.tensor("scalar").numel == 1);
  CHECK_THAT(error_of([&] { g.tensor("nope"); }), Catch::Contains("no tensor named 'nope'"));
}

TEST_CASE("GGUF dequantization equals gguf.quants.dequantize bit for bit, for every type", "[io][gguf][dequantize]") {
  const auto& values = expected_values();
  std::set<std::string> types_seen;
  for (const auto& [file, want] : expected()["valid"].items()) {
    // Through mmap and from an exact-size heap block (unaligned blocks show under UBSan).
    for (bool mapped : {true, false}) {
      INFO("fixture " << file << (mapped ? " (mmap)" : " (from_bytes)"));
      auto g = mapped ? GgufFile::open(dir() / file)
                      : GgufFile::from_bytes(read_bytes(dir() / file), (dir() / file).string());
      for (const json& w : want["tensors"]) {
        const auto& t = g.tensor(w["name"].get<std::string>());
        INFO("tensor " << t.name << " (" << t.type_name() << ")");
        if (!w["dequantize"].get<bool>()) continue;
        std::vector<float> got(size_t(t.numel));
        g.dequantize(t, got);
        CHECK(fnv1a64(got.data(), got.size() * 4) == w["f32_fnv1a64"].get<std::string>());
        const size_t at = w["values_at"].get<size_t>();
        REQUIRE(at + got.size() <= values.size());
        size_t first_bad = got.size();
        for (size_t i = 0; i < got.size() && first_bad == got.size(); ++i)
          if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(values[at + i])) first_bad = i;
        INFO("first mismatch at element " << first_bad << ": got "
                                          << (first_bad < got.size() ? hex32(got[first_bad]) : "-") << ", want "
                                          << (first_bad < got.size() ? hex32(values[at + first_bad]) : "-"));
        CHECK(first_bad == got.size());
        for (size_t i = 0; i < w["first_bits"].size() && i < got.size(); ++i)
          CHECK(hex32(got[i]) == w["first_bits"][i].get<std::string>());
        types_seen.insert(t.type_name());
      }
    }
  }
  CHECK(types_seen == std::set<std::string>{"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K",
                                            "Q3_K", "Q4_K", "Q5_K", "Q6_K"});
}

TEST_CASE("GGUF v2 and v3 of the same file read the same", "[io][gguf]") {
  auto v3 = GgufFile::open(dir() / "all_types.gguf");
  auto v2 = GgufFile::open(dir() / "all_types_v2.gguf");
  CHECK(v3.version() == 3);
  CHECK(v2.version() == 2);
  CHECK(v2.metadata().to_json() == v3.metadata().to_json());
  for (const auto& t : v3.tensors()) {
    if (!ggml_can_dequantize(t.type)) continue;
    auto a = v2.dequantize(t.name), b = v3.dequantize(t.name);  // bits: NaN != NaN
    CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  }
}

TEST_CASE("GGUF metadata: every value type, in file order, as written", "[io][gguf][metadata]") {
  for (const auto& [file, want] : expected()["valid"].items()) {
    INFO("fixture " << file);
    auto g = GgufFile::open(dir() / file);
    const auto& md = g.metadata();
    REQUIRE(md.size() == want["metadata"].size());
    for (const auto& [key, w] : want["metadata"].items()) {
      INFO("key " << key);
      REQUIRE(md.contains(key));
      const GgufValue& v = md.at(key);
      CHECK(gguf_type_name(gguf_type_of(v)) == w["type"].get<std::string>());
      if (w.contains("element_type"))
        CHECK(gguf_type_name(std::get<GgufArray>(v).type) == w["element_type"].get<std::string>());
      CHECK(gguf_to_json(v) == w["value"]);
    }
  }
  // File order is kept (json objects sort their keys; entries() does not).
  auto g = GgufFile::open(dir() / "all_types.gguf");
  CHECK(g.metadata().entries().front().first == "general.architecture");
  CHECK(g.metadata().entries()[1].first == "test.u8");
  CHECK(g.metadata().entries().back().first == "tokenizer.ggml.bos_token_id");
}

TEST_CASE("GGUF typed metadata readers: the reads a tokenizer conversion needs, and clear errors", "[io][gguf][metadata]") {
  auto g = GgufFile::open(dir() / "all_types.gguf");
  const auto& md = g.metadata();
  CHECK(md.get_string("general.architecture") == "llama");
  CHECK(md.get_string("test.string") == "Frankenstein — “the modern Prometheus” ✓ 🤗");
  CHECK(md.get_int("test.i8") == -128);
  CHECK(md.get_int("test.u32") == 4294967295);
  CHECK(md.get_int("test.i64") == INT64_MIN);
  CHECK(md.get_uint("test.u64") == UINT64_MAX);
  CHECK(md.get_uint("tokenizer.ggml.bos_token_id") == 0);
  CHECK(md.get_float("test.f32") == double(0.1f));
  CHECK(md.get_float("test.f64") == 1.0 / 3.0);
  CHECK(md.get_bool("test.bool_true"));
  CHECK_FALSE(md.get_bool("test.bool_false"));
  CHECK(md.get_string_array("tokenizer.ggml.tokens") ==
        std::vector<std::string>{"<|endoftext|>", "Ġthe", "", "ü", "<0x0A>", "日本"});
  CHECK(md.get_string_array("tokenizer.ggml.merges") == std::vector<std::string>{"Ġ t", "Ġt he"});
  CHECK(md.get_f32_array("tokenizer.ggml.scores") == std::vector<float>{0.0f, -1.5f, -2.25f, -1e10f, 3.0f, 0.1f});
  CHECK(md.get_int_array("tokenizer.ggml.token_type") == std::vector<int64_t>{3, 1, 1, 1, 6, 1});
  CHECK(md.get_int_array("test.array.u8") == std::vector<int64_t>{0, 1, 255});
  CHECK(md.get_int_array("test.array.i64") == std::vector<int64_t>{INT64_MIN, INT64_MAX});
  CHECK(md.get_float_array("test.array.f64") == std::vector<double>{1e-300, -2.5, 1e300});
  CHECK(md.get_array("test.array.bool").values<bool>() == std::vector<bool>{true, false, true});
  CHECK(md.get_array("test.array.u16").values<uint16_t>() == std::vector<uint16_t>{0, 65535});
  const GgufArray& nested = md.get_array("test.array.nested_strings");
  REQUIRE(nested.type == GgufType::ARRAY);
  REQUIRE(nested.arrays.size() == 2);
  CHECK(nested.arrays[0].strings == std::vector<std::string>{"a", "bb"});
  CHECK(md.find("no.such.key") == nullptr);

  // Each error names the file, the key and what was found.
  auto err = [&](const std::function<void()>& f) { return error_of(f); };
  CHECK_THAT(err([&] { md.get_string("no.such.key"); }), Catch::Contains("all_types.gguf: no metadata key 'no.such.key'"));
  CHECK_THAT(err([&] { md.get_string("test.u8"); }), Catch::Contains("metadata 'test.u8' is UINT8, not a string"));
  CHECK_THAT(err([&] { md.get_int("test.f32"); }), Catch::Contains("metadata 'test.f32' is FLOAT32, not an integer"));
  CHECK_THAT(err([&] { md.get_int("test.u64"); }), Catch::Contains("does not fit in int64"));
  CHECK_THAT(err([&] { md.get_uint("test.i8"); }), Catch::Contains("'test.i8' = -128 is negative"));
  CHECK_THAT(err([&] { md.get_float("test.i32"); }), Catch::Contains("is INT32, not FLOAT32 or FLOAT64"));
  CHECK_THAT(err([&] { md.get_bool("test.u8"); }), Catch::Contains("not a bool"));
  CHECK_THAT(err([&] { md.get_string_array("tokenizer.ggml.scores"); }),
             Catch::Contains("'tokenizer.ggml.scores' is an array of FLOAT32, not of STRING"));
  CHECK_THAT(err([&] { md.get_f32_array("test.array.f64"); }), Catch::Contains("array of FLOAT64, not of FLOAT32"));
  CHECK_THAT(err([&] { md.get_int_array("test.array.f32"); }), Catch::Contains("not of integers"));
  CHECK_THAT(err([&] { md.get_int_array("test.array.u64"); }), Catch::Contains("does not fit in int64"));
  CHECK_THAT(err([&] { md.get_array("test.string"); }), Catch::Contains("is STRING, not an array"));
  CHECK_THAT(err([&] { md.get_array("test.array.u8").values<int8_t>(); }),
             Catch::Contains("array of UINT8 read as INT8"));
}

TEST_CASE("GGUF: a type galvani cannot dequantize, and a wrong buffer, are clear errors", "[io][gguf][dequantize]") {
  auto g = GgufFile::open(dir() / "all_types.gguf");
  const auto& t = g.tensor("iq4_nl.unsupported");
  CHECK(t.type == GgmlType::IQ4_NL);
  CHECK(g.bytes(t).size() == 18);  // its raw bytes are still there
  std::vector<float> out(32);
  const std::string e = error_of([&] { g.dequantize(t, out); });
  CHECK_THAT(e, Catch::Contains("all_types.gguf: tensor 'iq4_nl.unsupported' has ggml type IQ4_NL (id 20)"));
  CHECK_THAT(e, Catch::Contains("cannot dequantize"));
  std::vector<float> small(10);
  CHECK_THAT(error_of([&] { g.dequantize("q4_0.random", small); }),
             Catch::Contains("tensor 'q4_0.random' [3, 64] has 192 elements; the output buffer holds 10"));
  // The free function checks its sizes too.
  std::vector<uint8_t> bytes(18);
  std::vector<float> y(31);
  CHECK_THAT(error_of([&] { dequantize_ggml(GgmlType::Q4_0, bytes, y); }), Catch::Contains("whole number of Q4_0 blocks"));
  y.resize(64);
  CHECK_THAT(error_of([&] { dequantize_ggml(GgmlType::Q4_0, bytes, y); }), Catch::Contains("take 36 bytes, got 18"));
  CHECK_THAT(error_of([&] { dequantize_ggml(GgmlType(99), bytes, y); }), Catch::Contains("unknown ggml type id 99"));
}

TEST_CASE("GGUF: every malformed fixture is rejected with an error naming the file and the fault", "[io][gguf][malformed]") {
  const auto mdir = dir() / "malformed";
  // The file they all start from is valid.
  auto base = GgufFile::open(mdir / "base.gguf");
  CHECK(base.dequantize("a") == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  int files = 0;
  for (const auto& [name, w] : expected()["malformed"].items()) {
    INFO("fixture " << name << " (gguf-py: " << w["gguf_py"].get<std::string>() << ")");
    const auto path = mdir / name;
    // Through mmap, and from an exact-size heap block, where AddressSanitizer sees a one-byte overrun.
    std::string e1 = error_of([&] { GgufFile::open(path); });
    std::string e2 = error_of([&] { GgufFile::from_bytes(read_bytes(path), path.string()); });
    CHECK_THAT(e1, Catch::Contains(w["error"].get<std::string>()));
    CHECK_THAT(e1, Catch::Contains(name));
    CHECK(e1 == e2);
    // Appends, not "'" + name: GCC 12 warns falsely (-Wrestrict) on the latter.
    std::string quoted;
    if (!w["tensor"].is_null()) CHECK_THAT(e1, Catch::Contains(quoted.append("tensor '").append(w["tensor"]).append("'")));
    quoted.clear();
    if (!w["key"].is_null()) CHECK_THAT(e1, Catch::Contains(quoted.append("'").append(w["key"]).append("'")));
    ++files;
  }
  CHECK(files >= 30);
}

TEST_CASE("GGUF: every truncation and many byte flips of a valid file fail cleanly", "[io][gguf][malformed]") {
  for (const char* file : {"all_types.gguf", "edge_v2.gguf", "align1.gguf"}) {
    INFO("fixture " << file);
    const auto good = read_bytes(dir() / file);
    const auto g = GgufFile::from_bytes(good, file);
    uint64_t last_end = 0;
    for (const auto& t : g.tensors()) last_end = std::max(last_end, g.data_start() + t.offset + t.nbytes);
    // Every cut before the last tensor's last byte loses something the header promises.
    for (size_t n = 0; n < last_end; ++n) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      INFO("prefix of " << n << " bytes");
      CHECK_THROWS_AS(GgufFile::from_bytes(std::move(cut), "cut"), Error);
    }
    // Flip bits in the header: either the result still validates (and every tensor reads) or
    // it throws galvani::Error; never a crash or another exception.
    int rejected = 0;
    for (size_t i = 0; i < g.data_start(); ++i) {
      for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
        auto bad = good;
        bad[i] ^= x;
        try {
          touch_everything(GgufFile::from_bytes(std::move(bad), "flipped"));
        } catch (const Error&) {
          ++rejected;
        }
      }
    }
    CHECK(rejected > 0);
  }
}

TEST_CASE("GGUF block layouts: hand-made blocks dequantize to the documented formulas", "[io][gguf][dequantize]") {
  // Q4_0: d = 0.5 (f16 0x3800); weight j < 16 from the low nibble, j + 16 from the high one.
  std::vector<uint8_t> q4(18, 0);
  q4[0] = 0x00, q4[1] = 0x38;
  for (int j = 0; j < 16; ++j) q4[size_t(2 + j)] = uint8_t(j | (15 - j) << 4);
  std::vector<float> y(32);
  dequantize_ggml(GgmlType::Q4_0, q4, y);
  for (int j = 0; j < 16; ++j) {
    CHECK(y[size_t(j)] == 0.5f * float(j - 8));
    CHECK(y[size_t(j + 16)] == 0.5f * float(15 - j - 8));
  }
  // Q8_0: d = 2 (0x4000); int8 codes.
  std::vector<uint8_t> q8(34, 0);
  q8[1] = 0x40;
  q8[2] = uint8_t(int8_t(-128));
  q8[3] = 127;
  dequantize_ggml(GgmlType::Q8_0, q8, y);
  CHECK(y[0] == -256.0f);
  CHECK(y[1] == 254.0f);
  // BF16 is the top half of an f32; F16 keeps a NaN's payload (as numpy does).
  std::vector<uint8_t> h = {0x80, 0x3f, 0x01, 0x7c};
  std::vector<float> two(2);
  dequantize_ggml(GgmlType::BF16, h, two);
  CHECK(two[0] == 1.0f);
  dequantize_ggml(GgmlType::F16, h, two);
  CHECK(std::bit_cast<uint32_t>(two[1]) == 0x7f802000u);
}
