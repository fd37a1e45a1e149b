// safetensors reader and writer: round trips, byte-identity with Python's writer,
// zero-copy views, dtype conversion, raw dtypes, and every malformed fixture.
#include <catch2/catch.hpp>

#include <galvani/io/safetensors.hpp>

#include <fstream>

#include "io_test_util.hpp"
#include "support/json_whole.hpp"

using namespace galvani;
using namespace galvani::io;
using namespace galvani::io::testing;
namespace fs = std::filesystem;

static std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The tensors of tools/gen_checkpoint_fixtures.py::python_written_tensors(), built in C++.
static StateDict python_written_tensors() {
  StateDict sd;
  std::vector<float> w;
  for (int i = 0; i < 6; ++i) w.push_back(float(i) * 0.5f - 1.0f);
  sd.insert("weight", Tensor::from_vector(w, {2, 3}));
  std::vector<bf16> b;
  for (float v : {0.25f, -2.0f, 3.5f, 1024.0f}) b.push_back(bf16(v));
  sd.insert("bias", Tensor::from_vector(b));
  std::vector<f16> h;
  for (float v : {1.0f, -0.5f, 65504.0f}) h.push_back(f16(v));
  sd.insert("half", Tensor::from_vector(h));
  sd.insert("ids", Tensor::from_vector<int64_t>({1, 2, 3, -4}, {2, 2}));
  sd.insert("bytes", Tensor::from_vector<uint8_t>({0, 1, 254, 255}));
  sd.insert_raw("signed", "I8", {3}, Tensor::from_vector<uint8_t>({0x80, 0x7f, 0x00}));
  sd.insert_raw("flag", "BOOL", {2}, Tensor::from_vector<uint8_t>({1, 0}));
  sd.insert("scalar", Tensor::full({}, 7.0, DType::f64));
  sd.insert("empty", Tensor::zeros({0, 4}));
  sd.insert("a.b.c", Tensor::from_vector<int32_t>({5}));
  return sd;
}

TEST_CASE("galvani writes the bytes Python's safetensors.torch.save_file writes", "[io][safetensors]") {
  auto want = read_bytes(fixtures() / "python_written.safetensors");
  REQUIRE(!want.empty());
  auto got = serialize_safetensors(python_written_tensors(), {{"format", "pt"}});
  REQUIRE(got.size() == want.size());
  CHECK(got == want);

  // And through a file on disk.
  auto dir = scratch_dir("galvani_io_st_write");
  save_safetensors(dir / "x.safetensors", python_written_tensors(), {{"format", "pt"}});
  CHECK(read_bytes(dir / "x.safetensors") == want);
  CHECK_FALSE(fs::exists(dir / "x.safetensors.tmp"));
}

TEST_CASE("reading the Python-written file gives every tensor back", "[io][safetensors]") {
  auto f = SafetensorsFile::open(fixtures() / "python_written.safetensors");
  CHECK(f.size() == 10);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.header().data_start() % 8 == 0);
  CHECK(f.tensor("weight").to_vector<float>() == std::vector<float>{-1, -0.5f, 0, 0.5f, 1, 1.5f});
  CHECK(f.tensor("weight").shape() == Shape{2, 3});
  CHECK(f.tensor("bias", DType::f32).to_vector<float>() == std::vector<float>{0.25f, -2, 3.5f, 1024});
  CHECK(f.tensor("half", DType::f32).to_vector<float>() == std::vector<float>{1, -0.5f, 65504});
  CHECK(f.tensor("ids").to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, -4});
  CHECK(f.tensor("scalar").shape().empty());
  CHECK(f.tensor("scalar").item<double>() == 7.0);
  CHECK(f.tensor("empty").shape() == Shape{0, 4});
  CHECK(f.tensor("a.b.c").item<int>() == 5);

  // dtypes galvani cannot hold: parsed, validated, served as bytes, refused as tensors.
  auto s = f.view("signed");
  CHECK(std::string(s.dtype_name()) == "I8");
  CHECK_FALSE(s.dtype());
  CHECK(s.bytes().to_vector<uint8_t>() == std::vector<uint8_t>{0x80, 0x7f, 0x00});
  std::string err = error_of([&] { (void)f.tensor("signed"); });
  CHECK_THAT(err, Catch::Contains("python_written.safetensors") && Catch::Contains("'signed'") &&
                      Catch::Contains("I8") && Catch::Contains("cannot hold"));

  // load() keeps them as raw entries, and a save writes them back unchanged.
  StateDict sd = f.load();
  CHECK(sd.entry("flag").is_raw());
  CHECK(sd.entry("flag").raw_dtype == "BOOL");
  CHECK_THAT(error_of([&] { (void)sd.at("flag"); }), Catch::Contains("BOOL"));
  CHECK(serialize_safetensors(sd, f.metadata()) == read_bytes(fixtures() / "python_written.safetensors"));
}

TEST_CASE("tensors are zero-copy views into the mapping", "[io][safetensors]") {
  auto f = SafetensorsFile::open(fixtures() / "python_written.safetensors");
  Tensor w = f.tensor("weight");
  const uint8_t* base = f.mapped_file()->data();
  auto p = static_cast<const uint8_t*>(w.raw_data());
  bool inside = p >= base && p < base + f.file_size();
  CHECK(inside);
  // The view keeps the mapping alive after the file object is gone.
  Tensor kept;
  {
    auto g = SafetensorsFile::open(fixtures() / "python_written.safetensors");
    kept = g.tensor("weight");
  }
  CHECK(kept.to_vector<float>()[5] == 1.5f);
  // copy_on_write: writing to a loaded tensor never touches the file.
  kept.data<float>()[0] = 42.0f;
  CHECK(SafetensorsFile::open(fixtures() / "python_written.safetensors").tensor("weight").to_vector<float>()[0] == -1.0f);
  // LoadOptions::copy detaches from the file; float_dtype converts.
  StateDict c = f.load({.float_dtype = DType::f32, .copy = true});
  CHECK(c.at("bias").dtype() == DType::f32);
  CHECK(c.at("ids").dtype() == DType::i64);  // only floats are converted
  auto q = static_cast<const uint8_t*>(c.at("ids").raw_data());
  bool outside = q < base || q >= base + f.file_size();
  CHECK(outside);
}

TEST_CASE("round trip through the writer, any order, non-contiguous input", "[io][safetensors]") {
  StateDict sd;
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  sd.insert("z.last", a);
  sd.insert("a.first", a.as_strided({3, 2}, {1, 3}, 0));  // a transposed view, not contiguous
  std::vector<bf16> b;
  for (int i = 0; i < 5; ++i) b.push_back(bf16(float(i) - 2.5f));
  sd.insert("m.bf", Tensor::from_vector(b));
  auto bytes = serialize_safetensors(sd);
  auto f = SafetensorsFile::from_bytes(bytes, "mem.safetensors");
  CHECK(f.metadata().empty());
  CHECK(f.tensor("a.first").to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(f.tensor("z.last").to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(f.tensor("m.bf", DType::f32).to_vector<float>() == std::vector<float>{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f});
  // Deterministic: the same dict written twice gives the same bytes.
  CHECK(serialize_safetensors(sd) == bytes);
}

TEST_CASE("an unaligned tensor is copied instead of viewed", "[io][safetensors]") {
  // A hand-made header whose length is not a multiple of 8 puts f32 data off alignment.
  std::string hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";  // 55 bytes
  REQUIRE(hdr.size() % 4 != 0);
  std::vector<uint8_t> file(8);
  for (int i = 0; i < 8; ++i) file[i] = uint8_t(hdr.size() >> (8 * i));
  file.insert(file.end(), hdr.begin(), hdr.end());
  float v[2] = {3.0f, -7.0f};
  auto* vp = reinterpret_cast<uint8_t*>(v);
  file.insert(file.end(), vp, vp + 8);
  auto f = SafetensorsFile::from_bytes(file, "unaligned");
  CHECK(f.tensor("x").to_vector<float>() == std::vector<float>{3.0f, -7.0f});
}

TEST_CASE("every malformed fixture is rejected with an error naming the file and tensor", "[io][safetensors][malformed]") {
  auto dir = fixtures() / "malformed";
  json expected = read_json_file(dir / "expected.json");
  int files = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    const std::string name = it.key();
    if (name.back() == '/') continue;  // sharded cases: test_io_sharded
    const std::string phrase = (*it)["error"].get<std::string>();
    auto path = dir / name;
    INFO("fixture " << name);
    // Through mmap ...
    std::string e1 = error_of([&] { SafetensorsFile::open(path); });
    // ... and from an exact-size heap block, where AddressSanitizer sees a one-byte overrun.
    std::string e2 = error_of([&] { SafetensorsFile::from_bytes(read_bytes(path), path.string()); });
    CHECK_THAT(e1, Catch::Contains(phrase));
    CHECK_THAT(e1, Catch::Contains(name));
    CHECK(e1 == e2);
    if (!(*it)["tensor"].is_null()) CHECK_THAT(e1, Catch::Contains(std::string("'") + (*it)["tensor"].get<std::string>() + "'"));
    ++files;
  }
  CHECK(files >= 25);
}

TEST_CASE("every truncation and every single-byte corruption of a valid file fails cleanly", "[io][safetensors][malformed]") {
  auto good = read_bytes(fixtures() / "python_written.safetensors");
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(n));
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(SafetensorsFile::from_bytes(cut, "cut"), Error);
  }
  // Flip header bytes: either the result still validates or it throws galvani::Error.
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | good[size_t(i)];
  int rejected = 0;
  for (size_t i = 0; i < 8 + hlen; ++i) {
    for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
      auto bad = good;
      bad[i] ^= x;
      try {
        auto f = SafetensorsFile::from_bytes(bad, "flipped");
        for (const auto& v : f.views()) (void)v.bytes().to_vector<uint8_t>();  // touch every byte
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("writer refuses what safetensors cannot hold", "[io][safetensors]") {
  StateDict sd;
  sd.insert("__metadata__", Tensor::zeros({1}));
  CHECK_THAT(error_of([&] { serialize_safetensors(sd); }), Catch::Contains("__metadata__"));
  StateDict r;
  r.insert_raw("x", "I16", {3}, Tensor::zeros({5}, DType::u8));
  CHECK_THAT(error_of([&] { serialize_safetensors(r); }), Catch::Contains("needs 6 bytes"));
  StateDict bad;
  bad.insert("caf\xc3", Tensor::zeros({1}));
  CHECK_THAT(error_of([&] { serialize_safetensors(bad); }), Catch::Contains("UTF-8"));
  StateDict dup;
  dup.insert("a", Tensor::zeros({1}));
  CHECK_THROWS_AS(dup.insert("a", Tensor::zeros({1})), Error);
}

TEST_CASE("a number no type can hold is a clear error, not a crash (found by the fuzzer)", "[io][safetensors][fuzz]") {
  // nlohmann/json refuses "10e9511627738" with out_of_range, not parse_error; the reader
  // must turn every JSON exception into a galvani::Error naming the file.
  for (std::string header : {std::string(R"({"a":{"dtype":"F32","shape":[10e9511627738],"data_offsets":[0,4]}})"),
                             std::string(R"({"__metadata__":{"x":"y"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e999999]}})")}) {
    std::vector<uint8_t> file(8, 0);
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) file[size_t(i)] = uint8_t(n >> (8 * i));
    file.insert(file.end(), header.begin(), header.end());
    file.insert(file.end(), 4, 0);
    CHECK_THROWS_WITH(galvani::io::SafetensorsFile::from_bytes(file, "overflow.safetensors"),
                      Catch::Contains("overflow.safetensors") && Catch::Contains("invalid JSON"));
  }
}

// Issue #11, item 3: a header is one JSON value and nothing more. nlohmann alone would
// stop at a NUL (`{...}\0\0\0` loaded); safetensors says "trailing characters".
TEST_CASE("a safetensors header is consumed whole, as safetensors does", "[io][safetensors][json_whole]") {
  galvani::testing::check_json_whole("safetensors", [](const std::filesystem::path& p) {
    auto f = SafetensorsFile::open(p);
    CHECK(f.views().size() == 1);
  });
}

// The fuzzer's seed corpus, through what its harness does: the valid seeds load, the
// index seed is one JSON value, and nothing throws anything but a galvani::Error.
TEST_CASE("the fuzz seed corpus still behaves", "[io][safetensors][fuzz]") {
  const auto dir = std::filesystem::path(GALVANI_SOURCE_DIR) / "tools" / "fuzz" / "corpus" / "fuzz_safetensors_header";
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    INFO(name);
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bool loaded = false;
    try {
      auto f = SafetensorsFile::from_bytes(bytes, name);
      loaded = !f.views().empty();
    } catch (const galvani::Error&) {
    }
    CHECK(loaded == (name.rfind("valid_", 0) == 0));
    if (name == "index.json")
      CHECK_NOTHROW(parse_json_strict(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), name));
    ++seen;
  }
  CHECK(seen >= 5);
}
