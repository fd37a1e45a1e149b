// config.json / generation_config.json / tokenizer_config.json as typed configs,
// with transformers' defaults for missing keys.
#include <catch2/catch.hpp>

#include <galvani/core/paths.hpp>
#include <galvani/io/config.hpp>

#include "io_test_util.hpp"
#include "support/json_whole.hpp"

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

// Every row of a config's field table, written and read back: a key the writer writes but
// the reader does not read (or reads under another name) comes back as its default.
// Each config is set to non-default values in every row, and rows_at_default() says
// which rows a case leaves at the default, so a new row without a test value shows up.
template <class C>
static std::vector<std::string> rows_at_default(const C& c, const C& defaults) {
  std::vector<std::string> same;
  std::apply([&](const auto&... f) { ((c.*f.member == defaults.*f.member ? same.push_back(f.key) : void()), ...); },
             C::fields());
  return same;
}
template <class C>
static C write_then_read(const C& c) {
  C back = C::from_json(json::parse(c.to_json().dump()));  // through text, as a file would be
  back.raw = c.raw;                                          // raw now holds the written file
  return back;
}

TEST_CASE("GPT2Config: every field survives to_json -> from_json", "[io][config]") {
  GPT2Config c;
  c.vocab_size = 100;
  c.n_positions = 64;
  c.n_embd = 48;
  c.n_layer = 3;
  c.n_head = 4;
  c.n_inner = 96;
  c.activation_function = "relu";
  c.resid_pdrop = 0.2;
  c.embd_pdrop = 0.3;
  c.attn_pdrop = 0.4;
  c.layer_norm_epsilon = 1e-6;
  c.initializer_range = 0.05;
  c.scale_attn_weights = false;
  c.scale_attn_by_inverse_layer_idx = true;
  c.reorder_and_upcast_attn = true;
  c.use_cache = false;
  c.tie_word_embeddings = false;
  c.bos_token_id = 7;
  c.eos_token_id = {8, 9};
  c.pad_token_id = 10;
  c.torch_dtype = "bfloat16";
  CHECK(rows_at_default(c, GPT2Config{}).empty());
  CHECK(write_then_read(c) == c);

  // The other shapes an optional or an id list takes: unset, and a single id (written bare).
  c.n_inner.reset();
  c.bos_token_id.reset();
  c.eos_token_id = {5};
  CHECK(c.to_json()["eos_token_id"] == 5);
  CHECK(write_then_read(c) == c);
}

TEST_CASE("MistralConfig and Llama: every field survives to_json -> from_json", "[io][config]") {
  // Llama: attention_bias and mlp_bias are written; sliding_window is not a Llama key.
  MistralConfig l = MistralConfig::defaults("llama");
  l.vocab_size = 100;
  l.hidden_size = 64;
  l.intermediate_size = 96;
  l.num_hidden_layers = 3;
  l.num_attention_heads = 8;
  l.num_key_value_heads = 2;
  l.head_dim_override = 16;  // not hidden_size / heads
  l.hidden_act = "gelu";
  l.max_position_embeddings = 512;
  l.initializer_range = 0.05;
  l.rms_norm_eps = 1e-5;
  l.rope_theta = 500000.0;
  l.rope_type = "linear";
  l.attention_dropout = 0.1;
  l.attention_bias = true;
  l.mlp_bias = true;
  l.use_cache = false;
  l.tie_word_embeddings = true;
  l.bos_token_id = 128000;
  l.eos_token_id = {128001, 128009};
  l.pad_token_id = 0;
  l.torch_dtype = "float16";
  CHECK(rows_at_default(l, MistralConfig::defaults("llama")) == std::vector<std::string>{"sliding_window"});
  CHECK(write_then_read(l) == l);

  // Mistral: sliding_window is written; the two bias flags are Llama's and are not.
  MistralConfig m = l;
  m.model_type = "mistral";
  m.sliding_window = 256;
  m.attention_bias = m.mlp_bias = false;
  CHECK(rows_at_default(m, MistralConfig::defaults("mistral")) == std::vector<std::string>{"attention_bias", "mlp_bias"});
  CHECK(write_then_read(m) == m);
  CHECK_FALSE(m.to_json().contains("attention_bias"));

  m.sliding_window.reset();  // null: no window
  CHECK(write_then_read(m) == m);
}

TEST_CASE("GenerationConfig: every field survives to_json -> from_json", "[io][config]") {
  GenerationConfig g;
  g.bos_token_id = 1;
  g.eos_token_id = {2, 3};
  g.pad_token_id = 0;
  g.max_length = 100;
  g.max_new_tokens = 40;
  g.do_sample = true;
  g.temperature = 0.7;
  g.top_k = 10;
  g.top_p = 0.9;
  g.repetition_penalty = 1.2;
  g.num_beams = 4;
  CHECK(rows_at_default(g, GenerationConfig{}).empty());
  CHECK(write_then_read(g) == g);

  // Back to the defaults: every key is left out again, even ones the file had.
  GenerationConfig d = GenerationConfig::from_json(g.to_json());
  d.bos_token_id.reset();
  d.eos_token_id.clear();
  d.pad_token_id.reset();
  d.max_new_tokens.reset();
  d.max_length = 20;
  d.do_sample = false;
  d.temperature = 1.0;
  d.top_k = 50;
  d.top_p = 1.0;
  d.repetition_penalty = 1.0;
  d.num_beams = 1;
  CHECK(d.to_json() == json::object());
}

// Issue #11, item 3: transformers reads these files with json.loads / json.load, which
// accept whitespace after the value and refuse anything else ("Extra data").
TEST_CASE("config, generation and tokenizer configs are consumed whole, as json.loads does", "[io][config][json_whole]") {
  using galvani::testing::check_json_whole;
  check_json_whole("config.json", [](const std::filesystem::path& p) {
    ModelConfig mc = load_model_config(p);  // outside CHECK: CHECK would swallow the Error
    CHECK(model_type_of(mc) == "gpt2");
  });
  check_json_whole("generation_config.json", [](const std::filesystem::path& p) {
    GenerationConfig g = GenerationConfig::load(p);
    CHECK(g.max_new_tokens == 8);
  });
  check_json_whole("tokenizer_config.json", [](const std::filesystem::path& p) {
    (void)TokenizerConfig::load(p.parent_path());
  });
  check_json_whole("special_tokens_map.json", [](const std::filesystem::path& p) {
    (void)TokenizerConfig::load(p.parent_path());
  });
}

TEST_CASE("parse_json_strict: what follows the value, whatever the value is", "[io][config][json_whole]") {
  using namespace std::string_literals;
  auto err = [](const std::string& text) {
    try {
      (void)parse_json_strict(text, "x.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // Brackets and quotes inside strings do not end the value early.
  CHECK(err(R"({"a": "}\"]", "b": ["]"]})"s + " \n") == "");
  CHECK_THAT(err(R"({"a": "}\"]"})"s + "\0\0"s), Catch::Contains("x.json") && Catch::Contains("byte offset 13"));
  // Scalars and arrays at the top level.
  CHECK(parse_json_strict("  42 \r\n", "x.json") == 42);
  CHECK_THAT(err("1 2"), Catch::Contains("'2' at byte offset 2"));
  CHECK_THAT(err("\"s\"\0"s), Catch::Contains("0x00 at byte offset 3"));
  CHECK_THAT(err("[1, [2]]]"), Catch::Contains("']' at byte offset 8"));
  CHECK_THAT(err("null\0"s), Catch::Contains("byte offset 4"));
  // A NUL inside the value, and nothing at all, are errors too.
  CHECK_THAT(err("{\"a\":\0 1}"s), Catch::Contains("NUL byte (0x00) at byte offset 5"));
  CHECK_THAT(err(""), Catch::Contains("invalid JSON"));
  CHECK_THAT(err("   "), Catch::Contains("invalid JSON"));
  CHECK_THAT(err("\xEF\xBB\xBF{}"), Catch::Contains("byte-order mark"));
  // A broken value is still reported as such, not as trailing bytes.
  CHECK_THAT(err(R"({"a": tru} x)"), Catch::Contains("invalid literal"));
}
