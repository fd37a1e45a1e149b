// Tokenizer parity with Hugging Face `tokenizers` (fixtures from tools/gen_tokenizer_fixtures.py),
// error messages, batching, invalid UTF-8 and bounded memory.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <galvani/core/paths.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "support/json_whole.hpp"
#include "support/sha256.hpp"

using galvani::Encoding;
using galvani::json;
using galvani::Tokenizer;
using galvani::testing::ids_digest;
using galvani::testing::sha256_hex;

namespace {

std::string fixture_path(const std::string& name) {
  return std::string(GALVANI_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
}
json load_fixture(const std::string& name) {
  return galvani::parse_json_text(galvani::read_text_file(fixture_path(name)), fixture_path(name));
}

std::optional<std::string> tokenizer_path(const std::string& name) {
  auto p = galvani::find_data_file("tokenizers/" + name + "/tokenizer.json");
  if (!p) {
    std::string def = std::string(GALVANI_DEFAULT_DATA) + "/tokenizers/" + name + "/tokenizer.json";
    if (std::filesystem::exists(def)) return def;
    return std::nullopt;
  }
  return p->string();
}
std::optional<std::string> novel_path() {
  if (auto p = galvani::find_data_file("frankenstein/pg84.txt")) return p->string();
  std::string def = std::string(GALVANI_DEFAULT_DATA) + "/frankenstein/pg84.txt";
  if (std::filesystem::exists(def)) return def;
  return std::nullopt;
}

#define REQUIRE_DATA(opt, what)                                              \
  if (!(opt)) {                                                              \
    WARN("skipped: " << galvani::data_file_missing(what));                   \
    return;                                                                  \
  }

std::string case_input(const json& c) {
  if (c.contains("hex")) {
    std::string hex = c["hex"], out;
    for (size_t i = 0; i < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
  }
  return c["text"].get<std::string>();
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

// Checks one edge case against its fixture record; returns the number of mismatches.
int check_case(const Tokenizer& tok, const json& c, bool offsets, const std::string& where) {
  int bad = 0;
  std::string in = case_input(c);
  auto expect_ids = ids_of(c["ids"]);
  auto expect_sp = c.contains("ids_special") ? ids_of(c["ids_special"]) : expect_ids;
  Encoding e = tok.encode(in, false);
  Encoding es = tok.encode(in, true);
  std::string name = where + "/" + c["name"].get<std::string>();
  if (e.ids != expect_ids) { ++bad; UNSCOPED_INFO(name << ": ids differ (" << e.ids.size() << " vs " << expect_ids.size() << ")"); }
  if (es.ids != expect_sp) { ++bad; UNSCOPED_INFO(name << ": ids with special tokens differ"); }
  if (tok.encode_ids(in, true) != expect_sp) { ++bad; UNSCOPED_INFO(name << ": encode_ids differs from encode"); }
  std::string dec = c["decode"];
  std::string dec_skip = c.contains("decode_skip") ? c["decode_skip"].get<std::string>() : dec;
  if (tok.decode(expect_sp, false) != dec) { ++bad; UNSCOPED_INFO(name << ": decode differs: got '" << tok.decode(expect_sp, false) << "' want '" << dec << "'"); }
  if (tok.decode(expect_sp, true) != dec_skip) { ++bad; UNSCOPED_INFO(name << ": decode(skip_special_tokens) differs"); }
  if (offsets && c.contains("offsets")) {
    std::vector<std::pair<size_t, size_t>> want;
    for (auto& o : c["offsets"]) want.push_back({o[0].get<size_t>(), o[1].get<size_t>()});
    if (e.offsets != want) { ++bad; UNSCOPED_INFO(name << ": offsets differ"); }
  }
  return bad;
}

}  // namespace

TEST_CASE("tokenizer: the whole novel matches Hugging Face (GPT-2 and Mistral)", "[tokenizer]") {
  auto novel = novel_path();
  REQUIRE_DATA(novel, "frankenstein/pg84.txt");
  std::string text = galvani::read_text_file(*novel);
  for (std::string name : {"gpt2", "mistral"}) {
    auto path = tokenizer_path(name);
    REQUIRE_DATA(path, "tokenizers/" + name + "/tokenizer.json");
    Tokenizer tok = Tokenizer::from_file(*path);
    json fx = load_fixture("novel_" + name + ".json");
    for (auto [key, special] : {std::pair{"plain", false}, std::pair{"special", true}}) {
      INFO(name << " " << key);
      auto ids = tok.encode_ids(text, special);
      CHECK(ids.size() == fx[key]["count"].get<size_t>());
      CHECK(ids_digest(ids) == fx[key]["sha256"].get<std::string>());
      CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + 300) == ids_of(fx[key]["head"]));
      CHECK(sha256_hex(tok.decode(ids)) == fx[key]["decode_sha256"].get<std::string>());
      CHECK(sha256_hex(tok.decode(ids, true)) == fx[key]["decode_skip_sha256"].get<std::string>());
    }
    CHECK(tok.encode(text, false).ids.size() == fx["plain"]["count"].get<size_t>());
  }
  // The counts the issue names.
  auto gpt2 = Tokenizer::from_file(*tokenizer_path("gpt2"));
  CHECK(gpt2.encode_ids(text, false).size() == 101705);
  auto mistral = Tokenizer::from_file(*tokenizer_path("mistral"));
  CHECK(mistral.encode_ids(text, false).size() == 107321);
}

TEST_CASE("tokenizer: edge-case suite matches Hugging Face ids, offsets and decode", "[tokenizer]") {
  for (std::string name : {"gpt2", "mistral"}) {
    auto path = tokenizer_path(name);
    REQUIRE_DATA(path, "tokenizers/" + name + "/tokenizer.json");
    Tokenizer tok = Tokenizer::from_file(*path);
    json fx = load_fixture("edge_" + name + ".json");
    REQUIRE(fx["cases"].size() >= 200);
    int bad = 0;
    for (auto& c : fx["cases"]) bad += check_case(tok, c, true, name);
    CHECK(bad == 0);
  }
}

TEST_CASE("tokenizer: other components (patched tokenizer.json) match Hugging Face", "[tokenizer]") {
  auto g = tokenizer_path("gpt2"), m = tokenizer_path("mistral");
  REQUIRE_DATA(g, "tokenizers/gpt2/tokenizer.json");
  REQUIRE_DATA(m, "tokenizers/mistral/tokenizer.json");
  std::map<std::string, json> base = {
      {"gpt2", galvani::parse_json_text(galvani::read_text_file(*g), *g)},
      {"mistral", galvani::parse_json_text(galvani::read_text_file(*m), *m)}};
  std::map<std::string, std::map<std::string, json>> base_cases;
  for (auto& [n, _] : base) {
    json edge = load_fixture("edge_" + n + ".json");
    for (auto& c : edge["cases"]) base_cases[n][c["name"].get<std::string>()] = c;
  }
  json fx = load_fixture("variants.json");
  for (auto& v : fx["variants"]) {
    std::string vname = v["name"], which = v["base"];
    json j = base[which];
    for (auto& [k, val] : v["patch"].items()) {
      if (k != "model") { j[k] = val; continue; }
      for (auto& [mk, mv] : val.items()) {
        if (mv.is_null()) j["model"].erase(mk);
        else j["model"][mk] = mv;
      }
    }
    Tokenizer tok = Tokenizer::from_json(j, vname);
    int bad = 0;
    for (auto& c : v["cases"]) bad += check_case(tok, c, false, vname);
    for (auto& s : v["same"]) bad += check_case(tok, base_cases[which][s.get<std::string>()], false, vname);
    INFO("variant " << vname);
    CHECK(bad == 0);
  }
}

TEST_CASE("tokenizer: encode_batch pads and truncates like transformers", "[tokenizer]") {
  json fx = load_fixture("batch.json");
  auto texts = fx["texts"].get<std::vector<std::string>>();
  std::map<std::string, Tokenizer> toks;
  for (std::string name : {"gpt2", "mistral"}) {
    auto path = tokenizer_path(name);
    REQUIRE_DATA(path, "tokenizers/" + name + "/tokenizer.json");
    toks.emplace(name, Tokenizer::from_file(*path));
  }
  for (auto& b : fx["batches"]) {
    galvani::EncodeOptions opt;
    std::string pad = b["padding"];
    opt.padding = pad == "none" ? galvani::Padding::None : pad == "longest" ? galvani::Padding::Longest : galvani::Padding::MaxLength;
    opt.padding_side = b["side"] == "left" ? galvani::Side::Left : galvani::Side::Right;
    opt.truncation = b["truncation"];
    if (!b["max_length"].is_null()) opt.max_length = b["max_length"].get<size_t>();
    opt.add_special_tokens = b["add_special_tokens"];
    opt.pad_id = b["pad_id"].get<int32_t>();
    auto out = toks.at(b["tokenizer"]).encode_batch(texts, opt);
    INFO(b["tokenizer"] << " padding=" << pad << " side=" << b["side"] << " max_length=" << b["max_length"]
                        << " special=" << b["add_special_tokens"]);
    REQUIRE(out.size() == texts.size());
    for (size_t i = 0; i < out.size(); ++i) {
      CHECK(out[i].ids == ids_of(b["ids"][i]));
      CHECK(out[i].attention_mask == ids_of(b["attention_mask"][i]));
      CHECK(out[i].offsets.size() == out[i].ids.size());
    }
  }
  // Padding without a pad token is an error that says what to do, as in transformers.
  galvani::EncodeOptions opt;
  opt.padding = galvani::Padding::Longest;
  CHECK_THROWS_WITH(toks.at("gpt2").encode_batch({"a", "b c"}, opt), Catch::Contains("no pad token"));
}

TEST_CASE("tokenizer: invalid UTF-8 is tokenized as Python's errors='replace' decode", "[tokenizer]") {
  using galvani::unicode::to_valid_utf8;
  CHECK(to_valid_utf8("abc") == "abc");
  CHECK(to_valid_utf8("\xff") == "\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xe2\x82(") == "\xEF\xBF\xBD(");              // one U+FFFD for a truncated sequence
  CHECK(to_valid_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogates: one per byte
  CHECK(to_valid_utf8("\xf0\x9f\x98") == "\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");   // overlong
  auto path = tokenizer_path("gpt2");
  REQUIRE_DATA(path, "tokenizers/gpt2/tokenizer.json");
  Tokenizer tok = Tokenizer::from_file(*path);
  CHECK(tok.encode("caf\xe9 ok").ids == tok.encode("caf\xEF\xBF\xBD ok").ids);
  // (the edge suite's invalid_utf8_* cases check the ids against Python)
}

TEST_CASE("tokenizer: broken tokenizer.json files give errors naming file and JSON path", "[tokenizer]") {
  auto path = tokenizer_path("gpt2");
  REQUIRE_DATA(path, "tokenizers/gpt2/tokenizer.json");
  std::string good = galvani::read_text_file(*path);
  auto dir = std::filesystem::temp_directory_path() / "galvani_tok_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    auto p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  };
  // truncated in the middle of the merges
  auto p1 = write("truncated.json", good.substr(0, good.size() - 1000));
  CHECK_THROWS_WITH(Tokenizer::from_file(p1), Catch::Contains("truncated.json") && Catch::Contains("$.model.merges["));
  // truncated in the vocab
  auto p2 = write("truncated_vocab.json", good.substr(0, good.find("\"Ġthe\"") + 3));
  CHECK_THROWS_WITH(Tokenizer::from_file(p2), Catch::Contains("truncated_vocab.json") && Catch::Contains("$.model.vocab"));

  json j = json::parse(good);
  auto fails_with = [&](json jj, const std::string& a, const std::string& b) {
    auto p = write("bad.json", jj.dump());
    CHECK_THROWS_WITH(Tokenizer::from_file(p), Catch::Contains("bad.json") && Catch::Contains(a) && Catch::Contains(b));
  };
  { json k = j; k["model"]["merges"][7] = 12; fails_with(k, "$.model.merges[7]", "merge"); }
  { json k = j; k["model"]["merges"][3] = "Ġ t h"; fails_with(k, "$.model.merges[3]", "one space"); }
  { json k = j; k["model"]["merges"][5] = "notatoken x"; fails_with(k, "$.model.merges[5]", "not in the vocab"); }
  { json k = j; k["model"]["vocab"]["hello"] = "x"; fails_with(k, "$.model.vocab.hello", "integer"); }
  { json k = j; k["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; fails_with(k, "$.pre_tokenizer.type", "unsupported pre_tokenizer type \"UnicodeScripts\""); }
  { json k = j; k["normalizer"] = {{"type", "Precompiled"}}; fails_with(k, "$.normalizer.type", "\"Precompiled\""); }
  { json k = j; k["decoder"] = {{"type", "WordPiece"}}; fails_with(k, "$.decoder.type", "\"WordPiece\""); }
  { json k = j; k["post_processor"] = {{"type", "Nope"}}; fails_with(k, "$.post_processor.type", "\"Nope\""); }
  { json k = j; k["model"]["type"] = "WordPiece"; fails_with(k, "$.model.type", "unsupported model type \"WordPiece\""); }
  { json k = j; k["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", "Isolated"}};
    fails_with(k, "$.pre_tokenizer.pattern.Regex", "unsupported Split regex"); }
  { json k = j; k["added_tokens"][0].erase("id"); fails_with(k, "$.added_tokens[0]", "missing key \"id\""); }
  CHECK_THROWS_WITH(Tokenizer::from_file((dir / "missing.json").string()), Catch::Contains("missing.json"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("tokenizer: both merges formats, a model without type, vocab API", "[tokenizer]") {
  auto path = tokenizer_path("gpt2");
  REQUIRE_DATA(path, "tokenizers/gpt2/tokenizer.json");
  json j = json::parse(galvani::read_text_file(*path));
  REQUIRE(!j["model"].contains("type"));  // the real GPT-2 file has none
  json pairs = j;
  for (auto& m : pairs["model"]["merges"]) {
    std::string s = m;
    auto sp = s.find(' ');
    m = json::array({s.substr(0, sp), s.substr(sp + 1)});
  }
  pairs["model"]["type"] = "BPE";
  Tokenizer a = Tokenizer::from_file(*path), b = Tokenizer::from_json(pairs);
  std::string text = "It was on a dreary night of November that I beheld the accomplishment of my toils.";
  CHECK(a.encode(text).ids == b.encode(text).ids);
  CHECK(a.encode("Hello world").ids == std::vector<int32_t>{15496, 995});
  CHECK(a.vocab_size() == 50257);
  CHECK(a.token_to_id("Ġthe") == 262);
  CHECK(a.id_to_token(262) == "Ġthe");
  CHECK(a.token_to_id("<|endoftext|>") == 50256);
  CHECK(a.eos_id() == 50256);
  CHECK(a.bos_id() == 50256);
  CHECK(!a.pad_id());
  CHECK(a.model_max_length() == 1024u);
  CHECK(a.id_to_token(999999).empty());
  auto m = tokenizer_path("mistral");
  REQUIRE_DATA(m, "tokenizers/mistral/tokenizer.json");
  Tokenizer mt = Tokenizer::from_file(*m);
  CHECK(mt.vocab_size() == 32000);
  CHECK(mt.bos_id() == 1);
  CHECK(mt.eos_id() == 2);
  CHECK(mt.unk_id() == 0);
  CHECK(!mt.pad_id());
  CHECK(mt.token_to_id("<0x0A>") == 13);
  CHECK(mt.encode("Hello world").ids == std::vector<int32_t>{1, 22557, 1526});
  Encoding e = mt.encode("Hello world");
  CHECK(e.offsets == std::vector<std::pair<size_t, size_t>>{{0, 0}, {0, 5}, {5, 11}});
  CHECK(e.attention_mask == std::vector<int32_t>{1, 1, 1});
}

TEST_CASE("tokenizer: the word cache stays bounded and does not change results", "[tokenizer]") {
  auto path = tokenizer_path("gpt2");
  auto novel = novel_path();
  REQUIRE_DATA(path, "tokenizers/gpt2/tokenizer.json");
  REQUIRE_DATA(novel, "frankenstein/pg84.txt");
  std::string text = galvani::read_text_file(*novel);
  Tokenizer tok = Tokenizer::from_file(*path);
  tok.set_cache_capacity(640);
  auto small = tok.encode_ids(text);
  CHECK(tok.cache_size() <= 640);
  tok.set_cache_capacity(0);
  CHECK(tok.encode_ids(text) == small);
  CHECK(tok.cache_size() == 0);
}

TEST_CASE("tokenizer: memory stays bounded on a 100 MB input", "[tokenizer][memory]") {
  auto novel = novel_path();
  REQUIRE_DATA(novel, "frankenstein/pg84.txt");
  std::string text = galvani::read_text_file(*novel);
#ifdef GALVANI_SANITIZED
  const size_t input_bytes = 16u << 20;  // ASan slows the encoder ~4x; 16 MB still dwarfs the cache
#else
  const size_t input_bytes = 100u << 20;
#endif
  std::string big;
  big.reserve(input_bytes);
  while (big.size() + text.size() <= input_bytes) big += text;
  for (std::string name : {"gpt2", "mistral"}) {
    auto path = tokenizer_path(name);
    REQUIRE_DATA(path, "tokenizers/" + name + "/tokenizer.json");
    Tokenizer tok = Tokenizer::from_file(*path);
    struct rusage before {}, after {};
    getrusage(RUSAGE_SELF, &before);
    auto ids = tok.encode_ids(big, false);
    getrusage(RUSAGE_SELF, &after);
    long grown_mb = (after.ru_maxrss - before.ru_maxrss) / 1024;  // ru_maxrss is in KiB
    INFO(name << ": " << ids.size() << " ids, peak memory grew by " << grown_mb << " MiB on a "
              << (big.size() >> 20) << " MiB input");
    // ids (4 bytes each, ~1 per 4 bytes of text) plus working buffers of at most a few
    // times the input; a leak or an unbounded cache would blow through this.
    CHECK(grown_mb < 600);
    CHECK(ids.size() > big.size() / 6);
  }
}

TEST_CASE("tokenizer: a number no type can hold is a clear error naming the file", "[tokenizer][errors]") {
  // nlohmann/json raises out_of_range (not parse_error) for such a number.
  CHECK_THROWS_WITH(galvani::parse_json_text(R"({"version": "1.0", "model": {"dropout": 1e999999}})", "huge.json"),
                    Catch::Contains("huge.json") && Catch::Contains("$.model.dropout"));
}

// Issue #11, item 3: `tokenizers` (serde_json) refuses bytes after the value
// ("trailing characters"); nlohmann alone stopped at a NUL and loaded the file.
// tokenizer_config.json and special_tokens_map.json, read next to it, likewise.
TEST_CASE("tokenizer: tokenizer.json and the configs next to it are consumed whole", "[tokenizer][errors]") {
  using galvani::testing::check_json_whole;
  for (const char* kind : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    check_json_whole(kind, [](const std::filesystem::path& p) {
      Tokenizer t = Tokenizer::from_file((p.parent_path() / "tokenizer.json").string());
      auto ids = t.encode("hello").ids;  // outside CHECK: CHECK would swallow an Error
      CHECK(ids.size() >= 1);
    });
}

#undef REQUIRE_DATA  // a unity build (GALVANI_TEST_TUS) puts other test files after this one
