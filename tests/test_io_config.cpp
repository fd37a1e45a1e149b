// config.json / generation_config.json / tokenizer_config.json as typed configs,
// with transformers' defaults for missing keys.
#include <catch2/catch.hpp>

#include <galvani/core/paths.hpp>
#include <galvani/io/config.hpp>

#include "io_test_util.hpp"

using namespace galvani;
using namespace galvani::io;

static std::optional<std::filesystem::path> data_file(const std::string& rel) {
  if (auto p = find_data_file(rel)) return p;
  auto p = std::filesystem::path(GALVANI_DEFAULT_DATA) / rel;
  if (std::filesystem::exists(p)) return p;
  WARN("skipped: " << data_file_missing(rel));
  return std::nullopt;
}

TEST_CASE("the real DistilGPT-2 and GPT-2 configs", "[io][config]") {
  auto p = data_file("tokenizers/gpt2/config-distilgpt2.json");
  if (!p) return;
  ModelConfig mc = load_model_config(*p);
  REQUIRE(model_type_of(mc) == "gpt2");
  const auto& c = std::get<GPT2Config>(mc);
  CHECK(c.n_layer == 6);
  CHECK(c.n_embd == 768);
  CHECK(c.n_head == 12);
  CHECK(c.head_dim() == 64);
  CHECK(c.n_positions == 1024);
  CHECK(c.vocab_size == 50257);
  CHECK(c.inner_dim() == 3072);  // n_inner is null
  CHECK(c.activation_function == "gelu_new");
  CHECK(c.layer_norm_epsilon == Approx(1e-5));
  CHECK(c.tie_word_embeddings);  // absent: PretrainedConfig's default
  CHECK(c.eos_token_id == std::vector<int64_t>{50256});
  CHECK(c.torch_dtype == "float32");
  // Unknown keys survive a round trip.
  json j = c.to_json();
  CHECK(j["task_specific_params"]["text-generation"]["max_length"] == 50);
  CHECK(GPT2Config::from_json(j).n_layer == 6);

  if (auto g = data_file("tokenizers/gpt2/config-gpt2.json")) {
    auto gc = std::get<GPT2Config>(load_model_config(*g));
    CHECK(gc.n_layer == 12);
    CHECK(gc.torch_dtype.empty());
  }
}

TEST_CASE("the real Mistral-7B config", "[io][config]") {
  auto p = data_file("tokenizers/mistral/config.json");
  if (!p) return;
  auto c = std::get<MistralConfig>(load_model_config(*p));
  CHECK(c.model_type == "mistral");
  CHECK(c.hidden_size == 4096);
  CHECK(c.intermediate_size == 14336);
  CHECK(c.num_hidden_layers == 32);
  CHECK(c.num_attention_heads == 32);
  CHECK(c.num_key_value_heads == 8);
  CHECK(c.head_dim() == 128);
  CHECK(c.max_position_embeddings == 32768);
  CHECK(c.rms_norm_eps == Approx(1e-5));
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.sliding_window == 4096);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_id == std::vector<int64_t>{2});
}

TEST_CASE("missing keys take transformers' defaults", "[io][config]") {
  auto g = std::get<GPT2Config>(parse_model_config(json::parse(R"({"model_type": "gpt2"})")));
  CHECK(g.n_layer == 12);
  CHECK(g.n_embd == 768);
  CHECK(g.vocab_size == 50257);
  CHECK(g.bos_token_id == 50256);
  CHECK(g.resid_pdrop == Approx(0.1));
  CHECK(g.scale_attn_weights);

  auto m = std::get<MistralConfig>(parse_model_config(json::parse(R"({"model_type": "mistral"})")));
  CHECK(m.num_key_value_heads == 8);
  CHECK(m.intermediate_size == 14336);
  CHECK(m.max_position_embeddings == 131072);
  CHECK(m.rms_norm_eps == Approx(1e-6));
  CHECK(m.sliding_window == 4096);
  CHECK(m.rope_theta == 10000.0);

  // Llama is Mistral without a sliding window, with its own defaults.
  auto l = std::get<MistralConfig>(parse_model_config(json::parse(R"({"model_type": "llama", "num_attention_heads": 16})")));
  CHECK(l.is_llama());
  CHECK_FALSE(l.sliding_window);
  CHECK(l.num_key_value_heads == 16);  // = num_attention_heads
  CHECK(l.intermediate_size == 11008);
  CHECK(l.max_position_embeddings == 2048);
  CHECK(l.to_json()["architectures"][0] == "LlamaForCausalLM");
  CHECK_FALSE(l.to_json().contains("sliding_window"));

  // null kv heads: one per query head; null sliding window: none.
  auto n = std::get<MistralConfig>(parse_model_config(
      json::parse(R"({"model_type": "mistral", "num_key_value_heads": null, "sliding_window": null})")));
  CHECK(n.num_key_value_heads == 32);
  CHECK_FALSE(n.sliding_window);
}

TEST_CASE("transformers 5 spellings: dtype and rope_parameters", "[io][config]") {
  auto cfg = galvani::io::testing::fixtures() / "mistral_tiny_sharded" / "config.json";
  auto m = std::get<MistralConfig>(load_model_config(cfg));
  CHECK(m.hidden_size == 16);
  CHECK(m.num_key_value_heads == 2);
  CHECK(m.head_dim() == 4);
  CHECK(m.sliding_window == 16);
  CHECK(m.torch_dtype == "bfloat16");
  CHECK(m.rope_theta == 10000.0);
  json j = m.to_json();
  CHECK(j["rope_theta"] == 10000.0);
  CHECK_FALSE(j.contains("rope_parameters"));
  CHECK(j["torch_dtype"] == "bfloat16");
  CHECK_FALSE(j.contains("dtype"));
  auto theta = std::get<MistralConfig>(parse_model_config(
      json::parse(R"({"model_type": "mistral", "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}})")));
  CHECK(theta.rope_theta == 1e6);
}

TEST_CASE("bad configs name the file and the key", "[io][config]") {
  auto err = [](const char* text) {
    try {
      parse_model_config(json::parse(text), "my/config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(err(R"({"model_type": "bert"})"), Catch::Contains("my/config.json") && Catch::Contains("bert"));
  CHECK_THAT(err(R"({"n_layer": 2})"), Catch::Contains("model_type"));
  CHECK_THAT(err(R"({"model_type": "gpt2", "n_embd": "big"})"), Catch::Contains("\"n_embd\" must be an integer"));
  CHECK_THAT(err(R"({"model_type": "gpt2", "n_embd": 10, "n_head": 3})"), Catch::Contains("not divisible"));
  CHECK_THAT(err(R"({"model_type": "mistral", "num_attention_heads": 32, "num_key_value_heads": 5})"),
             Catch::Contains("multiple"));
  CHECK_THAT(err(R"({"model_type": "gpt2", "tie_word_embeddings": 1})"), Catch::Contains("true or false"));
  CHECK_THROWS_WITH(parse_json_strict(R"({"a": 1, "a": 2})", "dup.json"), Catch::Contains("duplicate key \"a\""));
}

TEST_CASE("generation_config.json", "[io][config]") {
  if (auto p = data_file("tokenizers/gpt2/generation_config.json")) {
    auto g = GenerationConfig::load(*p);
    CHECK(g.bos_token_id == 50256);
    CHECK(g.eos_token_id == std::vector<int64_t>{50256});
    CHECK(g.max_length == 20);
    CHECK_FALSE(g.do_sample);
    CHECK(g.top_k == 50);
    json j = g.to_json();
    CHECK(j["_from_model_config"] == true);
    CHECK_FALSE(j.contains("top_k"));  // defaults are not written, as transformers does
  }
  auto g = GenerationConfig::from_json(json::parse(R"({"eos_token_id": [2, 32000], "do_sample": true, "temperature": 0.7})"));
  CHECK(g.eos_token_id == std::vector<int64_t>{2, 32000});
  CHECK(g.do_sample);
  CHECK(g.temperature == Approx(0.7));
  CHECK(g.to_json()["eos_token_id"] == json::array({2, 32000}));
}

TEST_CASE("tokenizer_config.json special tokens", "[io][config]") {
  auto p = data_file("tokenizers/mistral/tokenizer_config.json");
  if (!p) return;
  auto t = TokenizerConfig::load(p->parent_path());
  CHECK(t.tokenizer_class == "LlamaTokenizer");
  CHECK(t.bos_token == "<s>");
  CHECK(t.eos_token == "</s>");
  CHECK(t.unk_token == "<unk>");
  CHECK_FALSE(t.pad_token);
  CHECK(t.add_bos_token == true);
  CHECK(t.add_eos_token == false);
  CHECK(t.legacy == false);
  CHECK(*t.model_max_length > 1e29);
  REQUIRE(t.added_tokens.size() == 3);
  CHECK(t.added_tokens[1].id == 1);
  CHECK(t.added_tokens[1].content == "<s>");
  CHECK(t.added_tokens[1].special);

  if (auto g = data_file("tokenizers/gpt2/tokenizer_config.json")) {
    auto gt = TokenizerConfig::load(g->parent_path());
    CHECK(gt.model_max_length == 1024);
    CHECK_FALSE(gt.bos_token);
  }
  // AddedToken dicts, and special_tokens_map.json filling gaps.
  auto d = TokenizerConfig::from_json(json::parse(R"({"eos_token": {"content": "</s>", "__type": "AddedToken"}})"));
  CHECK(d.eos_token == "</s>");
}
