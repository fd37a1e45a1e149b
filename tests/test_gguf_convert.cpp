// GGUF → Hugging Face conversion (io/gguf_convert.hpp, tools/convert_gguf) and loading a .gguf
// directly (load_causal_lm), against the fixtures of tools/gen_gguf_model_fixture.py: two tiny
// llama GGUFs written as llama.cpp writes them (Q/K rows permuted, Q4_1/Q8_0 and Q5_1/Q4_0/F16
// weights, a byte-level BPE vocabulary as tokenizer.ggml.*), transformers' logits of their
// dequantized weights, and the Hugging Face tokenizer's ids for sample strings; and of
// tools/gen_gguf_spm_fixture.py: a SentencePiece vocabulary (tokenizer.ggml.model "llama") and
// what transformers' GGUF loader builds from it.
#include <catch2/catch.hpp>

#include <galvani/io/gguf_convert.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "support/sha256.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <set>

using namespace galvani;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "gguf_model";

const io::json& expected() {
  static const io::json e = io::read_json_file(kDir / "expected.json");
  return e;
}

std::vector<float> expected_logits(const io::json& prompt) {
  static std::vector<float> blob = [] {
    std::ifstream f(kDir / "expected_logits.f32", std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
    return v;
  }();
  const size_t at = prompt["logits_at"].get<size_t>();
  const size_t n = prompt["shape"][0].get<size_t>() * prompt["shape"][1].get<size_t>();
  REQUIRE(at + n <= blob.size());
  return {blob.begin() + long(at), blob.begin() + long(at + n)};
}

// The worst |galvani − transformers| over every prompt of `name`, and the largest logit.
std::pair<double, double> logits_diff(CausalLM& model, const std::string& name) {
  NoGradGuard ng;
  model.eval();
  double worst = 0, biggest = 0;
  for (const auto& p : expected()["models"][name]["prompts"]) {
    std::vector<int64_t> ids = p["ids"].get<std::vector<int64_t>>();
    Tensor logits = model.forward(Tensor::from_vector(ids, {1, int64_t(ids.size())}));
    std::vector<float> got = logits.contiguous().to_vector<float>();
    std::vector<float> want = expected_logits(p);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
      biggest = std::max(biggest, std::abs(double(want[i])));
    }
  }
  return {worst, biggest};
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("galvani_test_gguf_convert_" + name);
  fs::remove_all(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// `g`'s metadata with some keys replaced (or added) and some dropped.
io::GgufMetadata patched(const io::GgufFile& g, const std::map<std::string, io::GgufValue>& set,
                         const std::set<std::string>& drop = {}) {
  io::GgufMetadata md(g.path());
  for (const auto& [k, v] : g.metadata().entries()) {
    if (drop.count(k)) continue;
    const auto it = set.find(k);
    md.add(k, it == set.end() ? v : it->second);
  }
  for (const auto& [k, v] : set)
    if (!g.metadata().contains(k)) md.add(k, v);
  return md;
}

}  // namespace

TEST_CASE("unpermute_rope_rows inverts llama.cpp's LlamaModel.permute", "[gguf][convert]") {
  // permute: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2): HF row h·hd + i·hd/2 + j goes to
  // GGUF row h·hd + 2j + i. Rows labelled by their HF index must come back in order.
  const int64_t n_head = 3, hd = 8, cols = 2, rows = n_head * hd;
  std::vector<float> hf(size_t(rows * cols)), gg(hf.size()), back(hf.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) hf[size_t(r * cols + c)] = float(r * 10 + c);
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < hd / 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          gg[size_t((h * hd + 2 * j + i) * cols + c)] = hf[size_t((h * hd + i * hd / 2 + j) * cols + c)];
  io::unpermute_rope_rows(gg.data(), back.data(), rows, cols, n_head);
  CHECK(back == hf);
}

TEST_CASE("GGUF tensor names map onto LlamaForCausalLM's", "[gguf][convert]") {
  CHECK(io::gguf_llama_hf_name("token_embd.weight")->hf == "model.embed_tokens.weight");
  CHECK(io::gguf_llama_hf_name("output.weight")->hf == "lm_head.weight");
  CHECK(io::gguf_llama_hf_name("output_norm.weight")->hf == "model.norm.weight");
  CHECK(io::gguf_llama_hf_name("blk.12.attn_q.weight")->hf == "model.layers.12.self_attn.q_proj.weight");
  CHECK(io::gguf_llama_hf_name("blk.0.ffn_norm.weight")->hf == "model.layers.0.post_attention_layernorm.weight");
  CHECK(io::gguf_llama_hf_name("blk.3.ffn_down.weight")->layer == 3);
  CHECK_FALSE(io::gguf_llama_hf_name("blk.0.attn_q.bias"));
  CHECK_FALSE(io::gguf_llama_hf_name("blk.x.attn_q.weight"));
  CHECK_FALSE(io::gguf_llama_hf_name("blk..attn_q.weight"));
  CHECK_FALSE(io::gguf_llama_hf_name("rope_freqs.weight"));
}

TEST_CASE("convert_gguf_to_hf: the directory loads and gives transformers' logits", "[gguf][convert]") {
  for (const std::string name : {"tiny_llama.gguf", "tied.gguf"}) {
    INFO(name);
    const io::json& want = expected()["models"][name];
    const fs::path out = scratch(name);
    size_t progress_calls = 0;
    io::GgufConvertOptions opts;
    opts.progress = [&](size_t, size_t, const std::string&, const std::string&) { ++progress_calls; };
    const io::GgufConvertReport r = io::convert_gguf_to_hf(kDir / name, out, opts);
    CHECK(r.n_tensors == want["n_tensors_hf"].get<size_t>());
    CHECK(progress_calls == r.n_tensors);
    CHECK(r.sha256.size() == 64);
    for (const char* f : {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                          "tokenizer_config.json", "special_tokens_map.json", "CONVERSION.md"})
      CHECK(fs::exists(out / f));

    // config.json says what transformers' LlamaConfig said
    const io::json cj = io::read_json_file(out / "config.json");
    for (const auto& [k, v] : want["config"].items()) {
      INFO(k);
      if (v.is_number_float()) CHECK(cj[k].get<double>() == Approx(v.get<double>()).epsilon(1e-12));
      else CHECK(cj[k] == v);
    }
    CHECK(cj["model_type"] == "llama");
    CHECK(cj["head_dim"] == 16);
    CHECK(cj["bos_token_id"] == 1);
    CHECK(cj["eos_token_id"] == 2);
    CHECK(io::read_json_file(out / "generation_config.json") ==
          io::json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 2}});
    const io::json tc = io::read_json_file(out / "tokenizer_config.json");
    CHECK(tc["chat_template"].get<std::string>().find("<|im_start|>") != std::string::npos);
    CHECK(tc["eos_token"] == "<|im_end|>");
    CHECK(tc["add_bos_token"] == false);

    // every GGUF tensor type is named in CONVERSION.md, with the digest
    std::ifstream md(out / "CONVERSION.md");
    std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
    CHECK(text.find(r.sha256) != std::string::npos);
    for (const auto& [t, n] : r.tensor_types) CHECK(text.find(t + " × " + std::to_string(n)) != std::string::npos);

    auto model = load_causal_lm(out);
    const auto [worst, biggest] = logits_diff(*model, name);
    WARN(name << ": converted directory vs transformers: max |logit diff| " << worst << " (logits up to " << biggest
              << ")");
    CHECK(worst < 1e-4);

    // bf16: the same tensors rounded, config says so
    const fs::path out16 = scratch(name + "_bf16");
    io::GgufConvertOptions o16;
    o16.dtype = DType::bf16;
    io::convert_gguf_to_hf(kDir / name, out16, o16);
    CHECK(io::read_json_file(out16 / "config.json")["torch_dtype"] == "bfloat16");
    io::StateDict f32 = io::load_safetensors(out / "model.safetensors");
    io::StateDict b16 = io::load_safetensors(out16 / "model.safetensors");
    REQUIRE(f32.size() == b16.size());
    for (const auto& e : f32) {
      const Tensor& t = b16.at(e.name);
      REQUIRE(t.dtype() == DType::bf16);
      std::vector<float> a = e.tensor.to_vector<float>();
      const bf16* p = t.data<bf16>();
      for (size_t i = 0; i < a.size(); ++i) REQUIRE(p[i].bits == bf16::from_float(a[i]));
    }
    fs::remove_all(out);
    fs::remove_all(out16);
  }
}

TEST_CASE("load_causal_lm reads a .gguf directly and gives the same logits", "[gguf][convert]") {
  for (const std::string name : {"tiny_llama.gguf", "tied.gguf"}) {
    INFO(name);
    auto model = load_causal_lm(kDir / name);
    const auto [worst, biggest] = logits_diff(*model, name);
    CHECK(worst < 1e-4);
    // a directory holding one .gguf and no config.json is the same
    const fs::path d = scratch("dir_" + name);
    fs::create_directories(d);
    fs::copy_file(kDir / name, d / name);
    auto again = load_causal_lm(d);
    CHECK(logits_diff(*again, name).first == worst);
    fs::copy_file(kDir / name, d / ("copy_" + name));
    CHECK_THAT(error_of([&] { load_causal_lm(d); }), Catch::Contains("2 .gguf files"));
    fs::remove_all(d);
  }
}

TEST_CASE("the rebuilt tokenizer.json gives the Hugging Face tokenizer's ids", "[gguf][convert][tokenizer]") {
  const io::GgufFile g = io::GgufFile::open(kDir / "tiny_llama.gguf");
  const io::GgufTokenizerFiles files = io::gguf_tokenizer_files(g.metadata(), g.path());
  CHECK(files.tokenizer["pre_tokenizer"]["type"] == "Sequence");
  const Tokenizer tok =
      Tokenizer::from_json(parse_json_text(files.tokenizer.dump(), "tiny"), "tiny_llama.gguf tokenizer");
  const auto& samples = expected()["samples"];
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string s = samples[i].get<std::string>();
    INFO("sample " << i << ": " << s);
    std::vector<int32_t> ids = tok.encode(s).ids;
    CHECK(std::vector<int64_t>(ids.begin(), ids.end()) == expected()["ids_smollm"][i].get<std::vector<int64_t>>());
    CHECK(tok.decode(ids, false) == s);
  }
  // The special and user-defined tokens are added tokens, special or not as their type says.
  int n_special = 0, n_plain = 0;
  for (const auto& a : files.tokenizer["added_tokens"]) (a["special"].get<bool>() ? n_special : n_plain)++;
  CHECK(n_special == 3);
  CHECK(n_plain == 1);
  CHECK(files.special_tokens_map["bos_token"] == "<|im_start|>");
  CHECK(files.special_tokens_map["unk_token"] == "<|endoftext|>");

  // tokenizer.ggml.pre "gpt-2": GPT-2's ByteLevel pre-tokenizer alone
  io::GgufMetadata md(g.path());
  for (const auto& [k, v] : g.metadata().entries())
    md.add(k, k == "tokenizer.ggml.pre" ? io::GgufValue(std::string("gpt-2")) : v);
  const io::GgufTokenizerFiles plain = io::gguf_tokenizer_files(md, g.path());
  CHECK(plain.tokenizer["pre_tokenizer"]["type"] == "ByteLevel");
  const Tokenizer tok2 =
      Tokenizer::from_json(parse_json_text(plain.tokenizer.dump(), "gpt-2"), "gpt-2 tokenizer");
  for (size_t i = 0; i < samples.size(); ++i) {
    std::vector<int32_t> ids = tok2.encode(samples[i].get<std::string>()).ids;
    CHECK(std::vector<int64_t>(ids.begin(), ids.end()) == expected()["ids_gpt2"][i].get<std::vector<int64_t>>());
  }
}

TEST_CASE("bad GGUFs give errors naming the file and the key or tensor", "[gguf][convert][errors]") {
  struct Case {
    const char* file;
    std::vector<const char*> phrases;
  };
  const std::vector<Case> cases = {
      {"arch_falcon.gguf", {"general.architecture is \"falcon\"", "llama family"}},
      {"no_feed_forward_length.gguf", {"no metadata key 'llama.feed_forward_length'"}},
      {"wrong_shape.gguf", {"tensor 'blk.0.attn_q.weight' has shape [32, 64]", "implies [64, 64]",
                            "model.layers.0.self_attn.q_proj.weight"}},
      {"unknown_tensor.gguf", {"tensor 'blk.0.attn_qkv.weight'", "no place in the llama layout"}},
      {"layer_out_of_range.gguf", {"'blk.7.attn_norm.weight' is in layer 7", "block_count is 2"}},
      {"missing_tensors.gguf", {"no tensor 'token_embd.weight'", "model.embed_tokens.weight"}},
      {"tokenizer_bert.gguf", {"tokenizer.ggml.model is \"bert\""}},
      {"pre_qwen2.gguf", {"tokenizer.ggml.pre is \"qwen2\"", "smollm"}},
      {"rope_scaling.gguf", {"'llama.rope.scaling.type' is \"linear\"", "RoPE scaling"}},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    const fs::path file = kDir / "bad" / c.file;
    const fs::path out = scratch(std::string("bad_") + c.file);
    const std::string err = error_of([&] { io::convert_gguf_to_hf(file, out); });
    CHECK_THAT(err, Catch::Contains(c.file));
    for (const char* p : c.phrases) CHECK_THAT(err, Catch::Contains(p));
    CHECK_FALSE(fs::exists(out));  // checked before anything is written
    // Loading the file directly fails the same way, except for the tokenizer (not loaded there).
    const std::string lerr = error_of([&] { load_causal_lm(file); });
    if (std::string(c.file).rfind("tokenizer", 0) != 0 && std::string(c.file).rfind("pre_", 0) != 0)
      CHECK_THAT(lerr, Catch::Contains(c.phrases[0]));
  }

  // tokenizer.ggml.model "llama" without scores, or with too few
  const io::GgufFile g = io::GgufFile::open(kDir / "spm_vocab.gguf");
  CHECK_THAT(error_of([&] { io::gguf_tokenizer_files(patched(g, {}, {"tokenizer.ggml.scores"}), g.path()); }),
             Catch::Contains("spm_vocab.gguf") && Catch::Contains("no tokenizer.ggml.scores"));
  io::GgufArray few;
  few.type = io::GgufType::FLOAT32;
  few.count = 2;
  few.raw.assign(8, 0);
  CHECK_THAT(error_of([&] {
               io::gguf_tokenizer_files(patched(g, {{"tokenizer.ggml.scores", io::GgufValue(few)}}), g.path());
             }),
             Catch::Contains("tokenizer.ggml.scores has 2 entries, tokenizer.ggml.tokens 4603"));
  // a token that is not UTF-8
  io::GgufArray toks;
  toks.type = io::GgufType::STRING;
  toks.strings = g.metadata().get_string_array("tokenizer.ggml.tokens");
  toks.strings[7] = "\xff\xfe";
  toks.count = toks.strings.size();
  CHECK_THAT(error_of([&] {
               io::gguf_tokenizer_files(patched(g, {{"tokenizer.ggml.tokens", io::GgufValue(toks)}}), g.path());
             }),
             Catch::Contains("tokenizer.ggml.tokens[7] is not valid UTF-8"));
  // an unknown tokenizer type is refused by name
  CHECK_THAT(error_of([&] {
               io::gguf_tokenizer_files(patched(g, {{"tokenizer.ggml.model", io::GgufValue(std::string("rwkv"))}}),
                                        g.path());
             }),
             Catch::Contains("tokenizer.ggml.model is \"rwkv\"") && Catch::Contains("\"llama\""));
}

TEST_CASE("sentencepiece_merges is transformers' generate_merges", "[gguf][convert][tokenizer]") {
  // The expected list is what transformers 5.24's generate_merges(vocab, dict(zip(tokens,
  // scores))) returns for these pieces: ties on the score go to the longer left piece, then the
  // longer right one; a repeated piece ("ab") takes its last id and score at its first place.
  const std::vector<std::string> tokens = {"<unk>", "\u2581", "a", "b", "ab", "\u2581a", "bb",
                                           "abb", "\u2581ab", "\u00e9", "a\u00e9", "ab", "b\u2581"};
  const std::vector<double> scores = {0, -10, -11, -12, -1, -2, -3, -3, -4, -13, -5, -6, -7};
  const std::vector<std::pair<std::string, std::string>> want = {
      {"\u2581", "a"}, {"ab", "b"},      {"a", "bb"},      {"b", "b"}, {"\u2581a", "b"},
      {"\u2581", "ab"}, {"a", "\u00e9"}, {"a", "b"},       {"b", "\u2581"}};
  CHECK(io::sentencepiece_merges(tokens, scores) == want);
  CHECK_THROWS_AS(io::sentencepiece_merges(tokens, {0.0}), Error);
}

TEST_CASE("a SentencePiece GGUF vocabulary (\"llama\") is rebuilt as transformers' GGUF loader builds it",
          "[gguf][convert][tokenizer]") {
  // tools/gen_gguf_spm_fixture.py: a 4,603-piece slice of Mistral-7B's vocabulary written as
  // llama.cpp writes a SentencePiece model (scores, token types, byte pieces, no merges), and
  // what AutoTokenizer.from_pretrained(dir, gguf_file=...) makes of it.
  const io::json e = io::read_json_file(kDir / "spm_expected.json");
  const io::GgufFile g = io::GgufFile::open(kDir / "spm_vocab.gguf");
  const io::GgufTokenizerFiles files = io::gguf_tokenizer_files(g.metadata(), g.path());
  const io::json& t = files.tokenizer;

  // the merges recovered from the scores, in transformers' order
  std::string joined;
  for (size_t i = 0; i < t["model"]["merges"].size(); ++i) {
    const auto& m = t["model"]["merges"][i];
    joined += (i ? "\n" : "") + m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  CHECK(t["model"]["merges"].size() == e["merges"]["count"].get<size_t>());
  CHECK(testing::sha256_hex(joined) == e["merges"]["sha256"].get<std::string>());
  CHECK(t["pre_tokenizer"] == e["pre_tokenizer"]);
  CHECK(t["decoder"] == e["decoder"]);
  CHECK(t["post_processor"] == e["post_processor"]);
  CHECK(t["model"]["byte_fallback"] == true);
  CHECK(t["model"]["fuse_unk"] == true);
  REQUIRE(t["added_tokens"].size() == e["added_tokens"].size());
  for (size_t i = 0; i < t["added_tokens"].size(); ++i)
    for (const char* k : {"id", "content", "special"}) CHECK(t["added_tokens"][i][k] == e["added_tokens"][i][k]);
  CHECK(files.tokenizer_config["tokenizer_class"] == "LlamaTokenizer");
  CHECK(files.tokenizer_config["add_bos_token"] == true);
  CHECK(files.tokenizer_config["add_eos_token"] == false);
  CHECK(files.special_tokens_map["bos_token"] == "<s>");
  CHECK(files.special_tokens_map["unk_token"] == "<unk>");

  const auto check_samples = [](const Tokenizer& tok, const io::json& samples) {
    for (const auto& c : samples) {
      const std::string text = c["text"].get<std::string>();
      INFO("sample: \"" << text << "\"");
      CHECK(tok.encode_ids(text, false) == c["ids"].get<std::vector<int32_t>>());
      const std::vector<int32_t> sp = tok.encode_ids(text, true);
      CHECK(sp == c["ids_special"].get<std::vector<int32_t>>());
      CHECK(tok.decode(c["ids_special"].get<std::vector<int32_t>>(), false) == c["decode"].get<std::string>());
      CHECK(tok.decode(c["ids_special"].get<std::vector<int32_t>>(), true) == c["decode_skip"].get<std::string>());
    }
  };
  const Tokenizer tok = Tokenizer::from_json(parse_json_text(t.dump(), "spm"), "spm_vocab.gguf tokenizer");
  check_samples(tok, e["samples"]);

  // The whole novel, where the data is present (a count and a digest stand in for the ids).
  if (const auto novel = find_data_file("frankenstein/pg84.txt")) {
    const std::string text = read_text_file(*novel);
    for (const auto& [key, special] : {std::pair{"plain", false}, std::pair{"special", true}}) {
      INFO("novel, " << key);
      const std::vector<int32_t> ids = tok.encode_ids(text, special);
      const io::json& want = e["novel"][key];
      CHECK(ids.size() == want["count"].get<size_t>());
      CHECK(testing::ids_digest(ids) == want["sha256"].get<std::string>());
      CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + 300) == want["head"].get<std::vector<int32_t>>());
      CHECK(testing::sha256_hex(tok.decode(ids, false)) == want["decode_sha256"].get<std::string>());
    }
  } else {
    WARN("novel part skipped: " << data_file_missing("frankenstein/pg84.txt"));
  }

  // add_space_prefix = false (no "▁" before the first word) and add_eos_token = true
  const io::GgufMetadata md = patched(g, {{"tokenizer.ggml.add_space_prefix", io::GgufValue(false)},
                                          {"tokenizer.ggml.add_eos_token", io::GgufValue(true)}});
  const io::GgufTokenizerFiles v = io::gguf_tokenizer_files(md, g.path());
  const io::json& ve = e["no_space_prefix_add_eos"];
  CHECK(v.tokenizer["pre_tokenizer"] == ve["pre_tokenizer"]);
  CHECK(v.tokenizer["decoder"] == ve["decoder"]);
  CHECK(v.tokenizer_config["add_eos_token"] == true);
  check_samples(Tokenizer::from_json(parse_json_text(v.tokenizer.dump(), "spm variant"), "variant"), ve["samples"]);
}

TEST_CASE("sha256 matches the FIPS 180-4 examples", "[gguf][convert]") {
  auto hex = [](const std::string& s) {
    return io::sha256_hex({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  };
  CHECK(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  io::Sha256 h;  // a million 'a's fed in uneven pieces
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left) {
    size_t n = std::min(left, chunk.size());
    h.update({reinterpret_cast<const uint8_t*>(chunk.data()), n});
    left -= n;
  }
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
