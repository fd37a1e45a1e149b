// Sharded checkpoints: a transformers-written sharded Mistral loads with identical
// tensors, streaming visits shard by shard, galvani writes shards transformers reads,
// and every broken index is refused.
#include <catch2/catch.hpp>

#include <galvani/io/sharded.hpp>

#include "io_test_util.hpp"
#include "support/json_whole.hpp"

using namespace galvani;
using namespace galvani::io;
using namespace galvani::io::testing;
namespace fs = std::filesystem;

static json expected_for(const std::string& fixture) { return read_json_file(fixtures() / "expected.json")[fixture]; }

TEST_CASE("a transformers-written sharded bf16 Mistral streams shard by shard with identical tensors", "[io][sharded]") {
  auto dir = fixtures() / "mistral_tiny_sharded";
  json want = expected_for("mistral_tiny_sharded");
  ShardIndex idx = read_shard_index(dir / kSafetensorsIndex);
  CHECK(idx.shards().size() > 1);

  std::vector<std::string> files_seen;
  std::weak_ptr<MappedFile> previous;
  size_t n = 0;
  for_each_tensor(dir, [&](const std::string& name, const TensorView& v) {
    INFO(name);
    REQUIRE(want.contains(name));
    CHECK(std::string(v.dtype_name()) == want[name]["dtype"].get<std::string>());
    CHECK(v.shape() == want[name]["shape"].get<Shape>());
    CHECK(fnv1a64(v.data(), v.nbytes()) == want[name]["fnv1a64"].get<std::string>());
    if (files_seen.empty() || files_seen.back() != v.file()) {
      // A new shard: the previous one has been unmapped (nothing kept a view).
      CHECK(previous.expired());
      previous = v.mapped_file();
      files_seen.push_back(v.file());
    }
    ++n;
  });
  CHECK(n == want.size());
  CHECK(files_seen.size() == idx.shards().size());
  CHECK(std::is_sorted(files_seen.begin(), files_seen.end()));
}

TEST_CASE("load_checkpoint converts bf16 to f32 on request", "[io][sharded]") {
  auto dir = fixtures() / "mistral_tiny_sharded";
  StateDict bf = load_checkpoint(dir);
  StateDict f32 = load_checkpoint(dir / kSafetensorsIndex, {.float_dtype = DType::f32});
  REQUIRE(bf.size() == f32.size());
  for (const auto& e : bf) {
    CHECK(e.tensor.dtype() == DType::bf16);
    const Tensor& t = f32.at(e.name);
    CHECK(t.dtype() == DType::f32);
    auto a = e.tensor.to_vector<float>();
    CHECK(a == t.to_vector<float>());  // bf16 -> f32 is exact
  }
}

TEST_CASE("galvani's shards round trip, and split like huggingface_hub", "[io][sharded]") {
  StateDict sd = load_checkpoint(fixtures() / "mistral_tiny_sharded");
  auto dir = scratch_dir("galvani_io_sharded");
  auto files = save_checkpoint(dir, sd, {.max_shard_size = 4000});
  CHECK(fs::exists(dir / kSafetensorsIndex));
  auto idx = read_shard_index(dir / kSafetensorsIndex);
  CHECK(idx.total_size == sd.nbytes());
  CHECK(idx.weight_map.size() == sd.size());
  for (const auto& s : idx.shards()) CHECK(fs::file_size(dir / s) < 4000 + 4096);  // tensors + header
  StateDict back = load_checkpoint(dir);
  REQUIRE(back.size() == sd.size());
  for (const auto& e : sd) CHECK(fnv1a64(back.at(e.name)) == fnv1a64(e.tensor));

  // Saving again unsharded removes the stale shards and index.
  save_checkpoint(dir, sd);
  CHECK(fs::exists(dir / kSafetensorsWeights));
  CHECK_FALSE(fs::exists(dir / kSafetensorsIndex));
  for (const auto& s : idx.shards()) CHECK_FALSE(fs::exists(dir / s));
  CHECK(load_checkpoint(dir / kSafetensorsWeights).size() == sd.size());

  // A tensor larger than the limit gets its own shard.
  StateDict big;
  big.insert("a", Tensor::zeros({10}));
  big.insert("b", Tensor::zeros({100}));
  big.insert("c", Tensor::zeros({10}));
  big.insert("d", Tensor::zeros({10}));
  auto plan = plan_shards(big, 100);
  // huggingface_hub closes no shard for an oversized tensor: b goes first, alone,
  // and a keeps filling the open shard.
  REQUIRE(plan.size() == 3);
  CHECK(plan[0].size() == 1);
  CHECK(plan[0][0]->name == "b");
  REQUIRE(plan[1].size() == 2);  // a, c (80 bytes)
  CHECK(plan[1][1]->name == "c");
  CHECK(plan[2][0]->name == "d");
}

TEST_CASE("parse_size reads transformers' size strings", "[io][sharded]") {
  CHECK(parse_size("5GB") == 5'000'000'000ull);
  CHECK(parse_size("4KB") == 4000);
  CHECK(parse_size("500MiB") == 524'288'000ull);
  CHECK(parse_size("123") == 123);
  CHECK(parse_size("1.5GB") == 1'500'000'000ull);
  CHECK_THROWS_AS(parse_size("lots"), Error);
}

TEST_CASE("broken sharded checkpoints are refused with a clear error", "[io][sharded][malformed]") {
  auto dir = fixtures() / "malformed";
  json expected = read_json_file(dir / "expected.json");
  int cases = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    std::string name = it.key();
    if (name.back() != '/') continue;
    INFO(name);
    std::string err;
    try {
      for_each_tensor(dir / name, [](const std::string&, const TensorView&) {});
    } catch (const Error& e) {
      err = e.what();
    }
    CHECK_THAT(err, Catch::Contains((*it)["error"].get<std::string>()));
    CHECK_THAT(err, Catch::Contains(name.substr(0, name.size() - 1)));
    if (!(*it)["tensor"].is_null()) CHECK_THAT(err, Catch::Contains(std::string("'") + (*it)["tensor"].get<std::string>() + "'"));
    ++cases;
  }
  CHECK(cases >= 6);
  CHECK_THROWS_WITH(for_each_tensor(scratch_dir("galvani_io_empty_dir"), [](const std::string&, const TensorView&) {}),
                    Catch::Contains("no model.safetensors"));
}

// Issue #11, item 3: transformers reads the index with json.load, which refuses "Extra data".
TEST_CASE("model.safetensors.index.json is consumed whole, as json.load does", "[io][sharded][json_whole]") {
  galvani::testing::check_json_whole("model.safetensors.index.json", [](const std::filesystem::path& p) {
    ShardIndex idx = read_shard_index(p);
    CHECK(idx.weight_map.size() == 1);
  });
}
