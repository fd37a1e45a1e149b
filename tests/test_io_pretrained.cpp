// Model directories: from_pretrained on transformers-written GPT-2 and Mistral
// fixtures, DistilGPT-2-style keys, and save_pretrained round trips.
//
// The round trips are left in $TMPDIR/galvani_io_roundtrip/{gpt2,mistral}; run
//   ../refenv/bin/python tools/gen_checkpoint_fixtures.py --verify $TMPDIR/galvani_io_roundtrip/*
// to load them in transformers (see docs/checkpoints.md).
#include <catch2/catch.hpp>

#include <galvani/core/paths.hpp>
#include <galvani/io/pretrained.hpp>

#include "io_test_util.hpp"

using namespace galvani;
using namespace galvani::io;
using namespace galvani::io::testing;
namespace fs = std::filesystem;

static json expected_for(const std::string& fixture) { return read_json_file(fixtures() / "expected.json")[fixture]; }

static void check_matches(const StateDict& sd, const json& want) {
  CHECK(sd.size() == want.size());
  for (auto it = want.begin(); it != want.end(); ++it) {
    INFO(it.key());
    REQUIRE(sd.contains(it.key()));
    const Tensor& t = sd.at(it.key());
    CHECK(t.shape() == (*it)["shape"].get<Shape>());
    CHECK(fnv1a64(t) == (*it)["fnv1a64"].get<std::string>());
  }
}

TEST_CASE("from_pretrained reads a transformers-written GPT-2 directory", "[io][pretrained]") {
  Pretrained p = from_pretrained(fixtures() / "gpt2_tiny");
  CHECK(p.model_type() == "gpt2");
  const auto& c = std::get<GPT2Config>(p.config);
  CHECK(c.n_embd == 16);
  CHECK(c.n_layer == 2);
  CHECK(p.generation_config.bos_token_id == 0);
  check_matches(p.weights, expected_for("gpt2_tiny"));
  CHECK(p.weights.contains("transformer.h.1.mlp.c_fc.weight"));
  CHECK_FALSE(p.weights.contains("lm_head.weight"));  // tied: the model uses transformer.wte.weight
}

TEST_CASE("keys without transformer. and the attn.bias buffers load like transformers does", "[io][pretrained]") {
  Pretrained p = from_pretrained(fixtures() / "gpt2_noprefix");
  check_matches(p.weights, expected_for("gpt2_tiny"));
  for (const auto& e : p.weights) {
    CHECK(e.name.rfind("transformer.", 0) == 0);
    CHECK(e.name.find(".attn.bias") == std::string::npos);
    CHECK(e.name.find("masked_bias") == std::string::npos);
  }
  CHECK(canonical_key("gpt2", "h.0.attn.c_attn.bias") == "transformer.h.0.attn.c_attn.bias");
  CHECK_FALSE(canonical_key("gpt2", "h.0.attn.bias"));
  CHECK_FALSE(canonical_key("gpt2", "transformer.h.3.attn.masked_bias"));
  CHECK(canonical_key("gpt2", "lm_head.weight") == "lm_head.weight");
  CHECK(canonical_key("mistral", "layers.0.mlp.up_proj.weight") == "model.layers.0.mlp.up_proj.weight");
  CHECK_FALSE(canonical_key("llama", "model.layers.0.self_attn.rotary_emb.inv_freq"));
}

TEST_CASE("from_pretrained reads a sharded bf16 Mistral, converting on request", "[io][pretrained]") {
  Pretrained p = from_pretrained(fixtures() / "mistral_tiny_sharded");
  CHECK(p.model_type() == "mistral");
  check_matches(p.weights, expected_for("mistral_tiny_sharded"));
  CHECK(p.weights.at("lm_head.weight").dtype() == DType::bf16);
  Pretrained f = from_pretrained(fixtures() / "mistral_tiny_sharded", {.float_dtype = DType::f32});
  CHECK(f.weights.at("model.norm.weight").dtype() == DType::f32);
  CHECK(f.weights.at("model.norm.weight").to_vector<float>() == p.weights.at("model.norm.weight").to_vector<float>());
}

TEST_CASE("save_pretrained writes what from_pretrained (and transformers) reads", "[io][pretrained]") {
  auto root = fs::temp_directory_path() / "galvani_io_roundtrip";
  fs::create_directories(root);

  // GPT-2, with an explicit (tied) lm_head that must be left out, plus tokenizer files.
  Pretrained g = from_pretrained(fixtures() / "gpt2_tiny");
  StateDict w = g.weights;
  w.insert("lm_head.weight", w.at("transformer.wte.weight"));
  SavePretrainedOptions opts;
  if (auto tok = find_data_file("tokenizers/gpt2/tokenizer.json")) opts.tokenizer_dir = tok->parent_path();
  auto gdir = root / "gpt2";
  fs::remove_all(gdir);
  save_pretrained(gdir, g.config, w, opts);
  CHECK(fs::exists(gdir / "config.json"));
  CHECK(fs::exists(gdir / "generation_config.json"));
  CHECK(fs::exists(gdir / "model.safetensors"));
  if (!opts.tokenizer_dir.empty()) CHECK(fs::exists(gdir / "tokenizer.json"));
  CHECK_FALSE(SafetensorsFile::open(gdir / "model.safetensors").contains("lm_head.weight"));
  CHECK(SafetensorsFile::open(gdir / "model.safetensors").metadata().at("format") == "pt");
  Pretrained g2 = from_pretrained(gdir);
  check_matches(g2.weights, expected_for("gpt2_tiny"));
  CHECK(std::get<GPT2Config>(g2.config).n_embd == 16);
  CHECK(read_json_file(gdir / "config.json")["torch_dtype"] == "float32");

  // Mistral, sharded small.
  Pretrained m = from_pretrained(fixtures() / "mistral_tiny_sharded");
  auto mdir = root / "mistral";
  fs::remove_all(mdir);
  save_pretrained(mdir, m.config, m.weights, {.max_shard_size = 4000, .generation_config = m.generation_config, .tokenizer_dir = {}});
  CHECK(fs::exists(mdir / kSafetensorsIndex));
  Pretrained m2 = from_pretrained(mdir);
  check_matches(m2.weights, expected_for("mistral_tiny_sharded"));
  const auto& mc = std::get<MistralConfig>(m2.config);
  CHECK(mc.num_key_value_heads == 2);
  CHECK(mc.sliding_window == 16);
  CHECK(mc.torch_dtype == "bfloat16");
}

TEST_CASE("from_pretrained errors name the directory", "[io][pretrained]") {
  auto d = scratch_dir("galvani_io_no_config");
  CHECK_THROWS_WITH(from_pretrained(d), Catch::Contains("no config.json"));
  CHECK_THROWS_WITH(from_pretrained(d / "nope"), Catch::Contains("not a directory"));
}
