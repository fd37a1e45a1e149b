// Bad input, one case per row of docs/robustness.md (issue #17): every parser and the loaders
// above them, fed a broken file written here into a scratch folder (no big fixtures). Each
// case checks that the failure is a galvani::Error (not a crash, not another exception type)
// and that its message names the culprit — the file, and the key, tensor or setting at fault.
// The last case checks that every row of docs/robustness.md names a test that exists.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <galvani/data/collator.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/data/split.hpp>
#include <galvani/eval/generate.hpp>
#include <galvani/io/gguf.hpp>
#include <galvani/io/pretrained.hpp>
#include <galvani/io/safetensors.hpp>
#include <galvani/io/sharded.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/quant/bnb_config.hpp>
#include <galvani/tokenizer/tokenizer.hpp>
#include <galvani/train/trainer.hpp>

#include "support/training_args.hpp"

using namespace galvani;
namespace fs = std::filesystem;
using Catch::Contains;
using json = nlohmann::json;

namespace {

const fs::path kSource = GALVANI_SOURCE_DIR;

// The message of the galvani::Error f() throws. Any other exception, or none, is a failure
// of the row: a bad input must end in galvani's one error type with a message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a galvani::Error but " << typeid(e).name() << ": " << e.what());
  }
  FAIL("no error was thrown");
  return "";
}

// A fresh folder under the system's temp dir, removed when the case ends.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) : dir(fs::temp_directory_path() / ("galvani_robustness_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }
  fs::path write(const std::string& name, const std::string& bytes) const {
    fs::path p = dir / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// chmod 000 stops everyone but root; as root the "unreadable file" rows cannot be made.
bool running_as_root() { return ::geteuid() == 0; }

std::string read_file(const fs::path& p) { return read_text_file(p); }

// A safetensors file from a header text and the data section's bytes.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint8_t(n >> (8 * i)));
  return out + header + data;
}
// Two F32 tensors: a [2] at bytes 0..8, b [1] at 8..12.
const std::string kTwoTensors =
    safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                      std::string(12, '\0'));

// A byte-level BPE tokenizer.json with five tokens, no normalizer or pre-tokenizer.
json tiny_tokenizer_json() {
  return json::parse(R"({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
    "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4}, "merges": ["a b", "ab c"]}})");
}

// A 1-layer GPT-2 small enough to build in microseconds.
GPT2Config tiny_gpt2_config() {
  GPT2Config c;
  c.vocab_size = 16;
  c.n_positions = 8;
  c.n_embd = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.bos_token_id = 0;
  c.eos_token_id = {0};
  return c;
}

// A saved model directory (config.json, generation_config.json, model.safetensors).
fs::path saved_tiny_gpt2(const Scratch& s, const std::string& name = "model") {
  GPT2LMHeadModel m(tiny_gpt2_config(), 1);
  save_causal_lm(m, s.dir / name);
  return s.dir / name;
}

void edit_json(const fs::path& p, const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(p));
  edit(j);
  std::ofstream(p, std::ios::binary) << j.dump();
}

}  // namespace

// ================================================================== safetensors (io/safetensors.hpp)

TEST_CASE("safetensors: a missing file", "[robustness][safetensors]") {
  Scratch s("st_missing");
  const std::string e = error_of([&] { io::load_safetensors(s.dir / "nope.safetensors"); });
  CHECK_THAT(e, Contains("nope.safetensors: cannot open: No such file or directory"));
}

TEST_CASE("safetensors: an unreadable file (chmod 000)", "[robustness][safetensors]") {
  if (running_as_root()) {
    WARN("skipped: running as root, who can read a chmod 000 file");
    return;
  }
  Scratch s("st_unreadable");
  const fs::path p = s.write("locked.safetensors", kTwoTensors);
  fs::permissions(p, fs::perms::none);
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }), Contains("locked.safetensors: cannot open: Permission denied"));
}

TEST_CASE("safetensors: a directory where the file should be", "[robustness][safetensors]") {
  Scratch s("st_dir");
  fs::create_directories(s.dir / "model.safetensors");
  CHECK_THAT(error_of([&] { io::load_safetensors(s.dir / "model.safetensors"); }),
             Contains("model.safetensors: not a regular file"));
}

TEST_CASE("safetensors: an empty file", "[robustness][safetensors]") {
  Scratch s("st_empty");
  const fs::path p = s.write("empty.safetensors", "");
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("empty.safetensors: not a safetensors file: 0 bytes is too short"));
}

TEST_CASE("safetensors: truncated inside the header", "[robustness][safetensors]") {
  Scratch s("st_cut_header");
  const fs::path p = s.write("cut.safetensors", kTwoTensors.substr(0, 40));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("cut.safetensors: header length") && Contains("runs past the end of the file (40 bytes; truncated download?)"));
}

TEST_CASE("safetensors: truncated inside the tensor data", "[robustness][safetensors]") {
  Scratch s("st_cut_data");
  const fs::path p = s.write("cut.safetensors", kTwoTensors.substr(0, kTwoTensors.size() - 2));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("cut.safetensors: tensor 'b': data_offsets [8, 12] run past the end of the file"));
}

TEST_CASE("safetensors: a header length past the end of the file", "[robustness][safetensors]") {
  Scratch s("st_len");
  std::string bytes = kTwoTensors;
  bytes[1] = char(0x10);  // N += 4096
  const fs::path p = s.write("len.safetensors", bytes);
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("len.safetensors: header length 4") && Contains("runs past the end of the file"));
}

TEST_CASE("safetensors: overlapping data_offsets", "[robustness][safetensors]") {
  Scratch s("st_overlap");
  const fs::path p = s.write("overlap.safetensors",
                             safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                               std::string(12, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("overlap.safetensors: tensor 'b': data_offsets [4, 12] overlap tensor 'a' which ends at 8"));
}

TEST_CASE("safetensors: data_offsets listed out of order are accepted, as safetensors accepts them",
          "[robustness][safetensors]") {
  Scratch s("st_order");
  std::string data(12, '\0');
  const float one = 1, two = 2, three = 3;
  std::memcpy(&data[0], &two, 4);  // b [1] first in the data, a [2] after it
  std::memcpy(&data[4], &one, 4);
  std::memcpy(&data[8], &three, 4);
  const fs::path p = s.write("order.safetensors",
                             safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                               data));
  const io::StateDict sd = io::load_safetensors(p);
  CHECK(sd.find("a")->tensor.to_vector<float>() == std::vector<float>{1, 3});
  CHECK(sd.find("b")->tensor.to_vector<float>() == std::vector<float>{2});
}

TEST_CASE("safetensors: an unknown dtype", "[robustness][safetensors]") {
  Scratch s("st_dtype");
  const fs::path p = s.write("dtype.safetensors",
                             safetensors_bytes(R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})",
                                               std::string(4, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }), Contains("dtype.safetensors: tensor 'a': unknown dtype \"F12\""));
}

TEST_CASE("safetensors: shape times dtype size is not the byte count", "[robustness][safetensors]") {
  Scratch s("st_size");
  const fs::path p = s.write("size.safetensors",
                             safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                                               std::string(20, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("size.safetensors: tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] hold 20"));
}

TEST_CASE("safetensors: invalid UTF-8 in the header", "[robustness][safetensors]") {
  Scratch s("st_utf8");
  const fs::path p = s.write("utf8.safetensors",
                             safetensors_bytes("{\"\xC3\x28\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                               std::string(4, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("utf8.safetensors: header: JSON is not valid UTF-8 (bad byte 0xc3 at byte offset 10)"));
}

TEST_CASE("safetensors: a header that is not JSON", "[robustness][safetensors]") {
  Scratch s("st_json");
  const fs::path p = s.write("json.safetensors", safetensors_bytes(R"({"a": {"dtype": "F32",)", ""));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }), Contains("json.safetensors: header: invalid JSON"));
}

TEST_CASE("safetensors: a shape that is a string", "[robustness][safetensors]") {
  Scratch s("st_type");
  const fs::path p = s.write("type.safetensors",
                             safetensors_bytes(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})",
                                               std::string(8, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("type.safetensors: tensor 'a': \"shape\" must be an array, got \"2\""));
}

TEST_CASE("safetensors: an absurd shape whose size overflows 64 bits", "[robustness][safetensors]") {
  Scratch s("st_huge");
  const fs::path p = s.write("huge.safetensors",
                             safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                                               std::string(4, '\0')));
  CHECK_THAT(error_of([&] { io::load_safetensors(p); }),
             Contains("huge.safetensors: tensor 'a': shape [4294967296, 4294967296]") && Contains("overflows 64 bits"));
}

// ================================================================== model.safetensors.index.json (io/sharded.hpp)

TEST_CASE("sharded index: invalid JSON", "[robustness][sharded]") {
  Scratch s("ix_json");
  s.write("model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00001.safetensors",)");
  CHECK_THAT(error_of([&] { io::for_each_tensor(s.dir, [](const std::string&, const io::TensorView&) {}); }),
             Contains("model.safetensors.index.json: invalid JSON"));
}

TEST_CASE("sharded index: a shard name that is a number", "[robustness][sharded]") {
  Scratch s("ix_type");
  s.write("model.safetensors.index.json", R"({"metadata": {}, "weight_map": {"a": 1}})");
  CHECK_THAT(error_of([&] { io::for_each_tensor(s.dir, [](const std::string&, const io::TensorView&) {}); }),
             Contains("model.safetensors.index.json: weight_map entry for tensor 'a' must be a file name, got 1"));
}

TEST_CASE("sharded index: a shard the index names is missing", "[robustness][sharded]") {
  Scratch s("ix_missing");
  s.write("model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00002.safetensors"}})");
  CHECK_THAT(error_of([&] { io::for_each_tensor(s.dir, [](const std::string&, const io::TensorView&) {}); }),
             Contains("model.safetensors.index.json: shard model-00001-of-00002.safetensors is missing"));
}

TEST_CASE("checkpoint: a folder with neither model.safetensors nor an index", "[robustness][sharded]") {
  Scratch s("ix_none");
  s.write("pytorch_model.bin", "not read");
  CHECK_THAT(error_of([&] { io::for_each_tensor(s.dir, [](const std::string&, const io::TensorView&) {}); }),
             Contains("no model.safetensors or model.safetensors.index.json in this directory"));
}

// ================================================================== config.json (io/config.hpp, models/auto.hpp)

TEST_CASE("config.json: missing from a model directory", "[robustness][config]") {
  Scratch s("cfg_missing");
  const fs::path dir = saved_tiny_gpt2(s);
  fs::remove(dir / "config.json");
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model: no config.json (and no .gguf file)"));
}

TEST_CASE("config.json: an empty file", "[robustness][config]") {
  Scratch s("cfg_empty");
  const fs::path dir = saved_tiny_gpt2(s);
  s.write("model/config.json", "");
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model/config.json: invalid JSON: the text is empty (0 bytes)"));
}

TEST_CASE("config.json: truncated", "[robustness][config]") {
  Scratch s("cfg_cut");
  const fs::path dir = saved_tiny_gpt2(s);
  const std::string text = read_file(dir / "config.json");
  s.write("model/config.json", text.substr(0, text.size() / 2));
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model/config.json: invalid JSON"));
}

TEST_CASE("config.json: invalid UTF-8", "[robustness][config]") {
  Scratch s("cfg_utf8");
  const fs::path dir = saved_tiny_gpt2(s);
  s.write("model/config.json", "{\"model_type\": \"gpt2\", \"name\": \"caf\xE9\"}");
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: JSON is not valid UTF-8 (bad byte 0xe9 at byte offset 35)"));
}

TEST_CASE("config.json: a directory of that name", "[robustness][config]") {
  Scratch s("cfg_dir");
  const fs::path dir = saved_tiny_gpt2(s);
  fs::remove(dir / "config.json");
  fs::create_directories(dir / "config.json");
  CHECK_THAT(error_of([&] { io::load_model_config(dir / "config.json"); }),
             Contains("model/config.json: cannot read: it is a directory"));
}

TEST_CASE("config.json: an unreadable file (chmod 000)", "[robustness][config]") {
  if (running_as_root()) {
    WARN("skipped: running as root, who can read a chmod 000 file");
    return;
  }
  Scratch s("cfg_unreadable");
  const fs::path dir = saved_tiny_gpt2(s);
  fs::permissions(dir / "config.json", fs::perms::none);
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: cannot open file (it exists but cannot be read)"));
}

TEST_CASE("config.json: a JSON array instead of an object", "[robustness][config]") {
  Scratch s("cfg_array");
  const fs::path dir = saved_tiny_gpt2(s);
  s.write("model/config.json", "[1, 2]");
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model/config.json: a config must be a JSON object"));
}

TEST_CASE("config.json: a string where a number belongs", "[robustness][config]") {
  Scratch s("cfg_type");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["vocab_size"] = "16"; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: \"vocab_size\" must be an integer, got \"16\""));
}

TEST_CASE("config.json: n_layer -1", "[robustness][config]") {
  Scratch s("cfg_neg");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["n_layer"] = -1; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model/config.json: \"n_layer\" must be positive, got -1"));
}

TEST_CASE("config.json: an absurd vocab_size (1e12)", "[robustness][config]") {
  Scratch s("cfg_vocab");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["vocab_size"] = 1e12; });
  // Refused as the config is read: building it would try to allocate 32 TB first.
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: vocab_size 1000000000000, n_positions 8, n_embd 8, n_layer 1, n_inner 32 "
                      "describe a model of 8e+12 parameters; galvani refuses more than 2^40"));
}

TEST_CASE("config.json: an absurd n_layer (1e9)", "[robustness][config]") {
  Scratch s("cfg_layers");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["n_layer"] = 1000000000; });
  // Refused as the config is read: building it would spend hours creating a billion blocks.
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: \"n_layer\" 1000000000 is absurd (galvani allows up to 65536"));
}

TEST_CASE("tensor: a shape whose byte count overflows 64 bits", "[robustness][core]") {
  CHECK_THAT(error_of([&] { Tensor::empty({int64_t(1) << 40, int64_t(1) << 30}); }),
             Contains("Tensor::empty: shape [1099511627776, 1073741824] of f32 needs more than 2^63 bytes"));
  CHECK(Tensor::empty({int64_t(1) << 40, int64_t(1) << 40, 0}).numel() == 0);  // a zero size is still empty
  // ... unless its strides cannot be written down (found by UBSan: they used to wrap around)
  CHECK_THAT(error_of([&] { Tensor::empty({int64_t(1) << 40, int64_t(1) << 40, int64_t(1) << 40, 0}); }),
             Contains("the strides of shape [1099511627776, 1099511627776, 1099511627776, 0] overflow int64"));
}

TEST_CASE("config.json: n_embd not divisible by n_head", "[robustness][config]") {
  Scratch s("cfg_heads");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["n_head"] = 3; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }), Contains("model/config.json: n_embd 8 is not divisible by n_head 3"));
}

TEST_CASE("config.json: a model_type galvani does not know", "[robustness][config]") {
  Scratch s("cfg_bert");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["model_type"] = "bert"; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/config.json: model_type \"bert\" is not supported (galvani knows gpt2, mistral, llama)"));
}

TEST_CASE("config.json: shapes that disagree with the weights", "[robustness][config]") {
  Scratch s("cfg_shape");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["n_embd"] = 16; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model/model.safetensors") && Contains("transformer.") && Contains("in the checkpoint but"));
}

TEST_CASE("model directory: the weights of another model", "[robustness][config]") {
  Scratch s("cfg_other");
  const fs::path gpt2 = saved_tiny_gpt2(s, "gpt2");
  MistralConfig mc = MistralConfig::defaults("llama");
  mc.vocab_size = 16, mc.hidden_size = 8, mc.intermediate_size = 16, mc.num_hidden_layers = 1;
  mc.num_attention_heads = 2, mc.num_key_value_heads = 2, mc.max_position_embeddings = 8;
  save_causal_lm(MistralForCausalLM(mc, 1), s.dir / "llama");
  fs::copy_file(s.dir / "llama" / "config.json", gpt2 / "config.json", fs::copy_options::overwrite_existing);
  CHECK_THAT(error_of([&] { load_causal_lm(gpt2); }),
             Contains("gpt2: the checkpoint has no tensor for: model.embed_tokens.weight, model.layers.0."));
}

// ================================================================== generation_config.json

TEST_CASE("generation_config.json: invalid JSON", "[robustness][generation_config]") {
  Scratch s("gen_json");
  const fs::path p = s.write("generation_config.json", R"({"max_length": 20,})");
  CHECK_THAT(error_of([&] { io::GenerationConfig::load(p); }), Contains("generation_config.json: invalid JSON"));
}

TEST_CASE("generation_config.json: a string where a number belongs", "[robustness][generation_config]") {
  Scratch s("gen_type");
  const fs::path p = s.write("generation_config.json", R"({"max_length": "long"})");
  CHECK_THAT(error_of([&] { io::GenerationConfig::load(p); }),
             Contains("generation_config.json: \"max_length\" must be an integer, got \"long\""));
}

TEST_CASE("generation_config.json: do_sample that is not true or false", "[robustness][generation_config]") {
  Scratch s("gen_bool");
  const fs::path p = s.write("generation_config.json", R"({"do_sample": "yes"})");
  CHECK_THAT(error_of([&] { io::GenerationConfig::load(p); }),
             Contains("generation_config.json: \"do_sample\" must be true or false, got \"yes\""));
}

// ================================================================== tokenizer_config.json

TEST_CASE("tokenizer_config.json: invalid JSON beside tokenizer.json", "[robustness][tokenizer_config]") {
  Scratch s("tokcfg_json");
  const fs::path tok = s.write("tokenizer.json", tiny_tokenizer_json().dump());
  s.write("tokenizer_config.json", R"({"bos_token": "a")");
  CHECK_THAT(error_of([&] { Tokenizer::from_file(tok.string()); }), Contains("tokenizer_config.json: JSON parse error at $.bos_token") &&
                                                                      Contains("unexpected end of input"));
}

TEST_CASE("tokenizer_config.json: a number where a token belongs", "[robustness][tokenizer_config]") {
  Scratch s("tokcfg_type");
  const fs::path tok = s.write("tokenizer.json", tiny_tokenizer_json().dump());
  s.write("tokenizer_config.json", R"({"bos_token": 5})");
  CHECK_THAT(error_of([&] { Tokenizer::from_file(tok.string()); }),
             Contains("tokenizer_config.json: $.bos_token: expected a string, got number"));
  // from_pretrained reads the same file through io::TokenizerConfig
  CHECK_THAT(error_of([&] { io::TokenizerConfig::load(s.dir); }),
             Contains("tokenizer_config.json: \"bos_token\" must be a string or a token object, got 5"));
}

TEST_CASE("tokenizer_config.json: an added_tokens_decoder key that is not an id", "[robustness][tokenizer_config]") {
  Scratch s("tokcfg_key");
  const fs::path p = s.write("tokenizer_config.json", R"({"added_tokens_decoder": {"abc": {"content": "<s>"}}})");
  CHECK_THAT(error_of([&] { io::TokenizerConfig::load(s.dir); }),
             Contains("tokenizer_config.json: added_tokens_decoder key \"abc\" is not a token id"));
}

// ================================================================== tokenizer.json (tokenizer/)

TEST_CASE("tokenizer.json: an empty file", "[robustness][tokenizer]") {
  Scratch s("tok_empty");
  const fs::path p = s.write("tokenizer.json", "");
  CHECK_THAT(error_of([&] { Tokenizer::from_file(p.string()); }),
             Contains("tokenizer.json: invalid JSON: the text is empty (0 bytes)"));
}

TEST_CASE("tokenizer.json: a directory of that name", "[robustness][tokenizer]") {
  Scratch s("tok_dir");
  fs::create_directories(s.dir / "tokenizer.json");
  CHECK_THAT(error_of([&] { Tokenizer::from_file(s.path("tokenizer.json")); }),
             Contains("tokenizer.json: cannot read: it is a directory"));
}

TEST_CASE("tokenizer.json: invalid UTF-8 in a token", "[robustness][tokenizer]") {
  Scratch s("tok_utf8");
  std::string text = tiny_tokenizer_json().dump();
  text.replace(text.find("\"abc\":"), 6, "\"a\xFF\":");
  const fs::path p = s.write("tokenizer.json", text);
  CHECK_THAT(error_of([&] { Tokenizer::from_file(p.string()); }),
             Contains("tokenizer.json: JSON parse error at $.model.vocab") && Contains("UTF-8"));
}

TEST_CASE("tokenizer.json: a model type galvani does not implement", "[robustness][tokenizer]") {
  json j = tiny_tokenizer_json();
  j["model"]["type"] = "Unigram";
  CHECK_THAT(error_of([&] { Tokenizer::from_json(j, "uni/tokenizer.json"); }),
             Contains("uni/tokenizer.json: $.model.type: unsupported model type \"Unigram\" (galvani implements BPE)"));
}

TEST_CASE("tokenizer.json: a negative token id", "[robustness][tokenizer]") {
  json j = tiny_tokenizer_json();
  j["model"]["vocab"]["c"] = -1;
  CHECK_THAT(error_of([&] { Tokenizer::from_json(j, "neg/tokenizer.json"); }),
             Contains("neg/tokenizer.json: $.model.vocab.c: expected a non-negative integer id"));
}

TEST_CASE("tokenizer.json: an absurd token id (2e9)", "[robustness][tokenizer]") {
  json j = tiny_tokenizer_json();
  j["model"]["vocab"]["c"] = 2000000000;
  CHECK_THAT(error_of([&] { Tokenizer::from_json(j, "big/tokenizer.json"); }),
             Contains("big/tokenizer.json: $.model.vocab.c") && Contains("2000000000") && Contains("5 tokens"));
}

TEST_CASE("tokenizer.json: a JSON array instead of an object", "[robustness][tokenizer]") {
  Scratch s("tok_array");
  const fs::path p = s.write("tokenizer.json", "[]");
  CHECK_THAT(error_of([&] { Tokenizer::from_file(p.string()); }),
             Contains("tokenizer.json: $: expected a JSON object (a tokenizer.json)"));
}

TEST_CASE("tokenizer: decoding ids outside the vocabulary skips them, as tokenizers does", "[robustness][tokenizer]") {
  const Tokenizer tok = Tokenizer::from_json(tiny_tokenizer_json());
  CHECK(tok.decode({3, -1, 5, 2000000000, 2}) == "ab c");
  CHECK(tok.decode({-7}).empty());
}

// ================================================================== GGUF (io/gguf.hpp)

TEST_CASE("gguf: a missing file", "[robustness][gguf]") {
  Scratch s("gguf_missing");
  CHECK_THAT(error_of([&] { io::GgufFile::open(s.dir / "model.gguf"); }),
             Contains("model.gguf: cannot open: No such file or directory"));
}

TEST_CASE("gguf: a bad magic number", "[robustness][gguf]") {
  Scratch s("gguf_magic");
  const fs::path p = s.write("magic.gguf", std::string("GGUX") + std::string(20, '\0'));
  CHECK_THAT(error_of([&] { io::GgufFile::open(p); }), Contains("magic.gguf") && Contains("bad magic"));
}

TEST_CASE("gguf: a model file cut in half", "[robustness][gguf]") {
  Scratch s("gguf_cut");
  const std::string whole = read_file(kSource / "tests/fixtures/gguf_model/tiny_llama.gguf");
  const fs::path p = s.write("half.gguf", whole.substr(0, whole.size() / 2));
  CHECK_THAT(error_of([&] { load_causal_lm(p); }), Contains("half.gguf") && Contains("run past the end of the file"));
}

// ================================================================== peft adapters (models/peft.hpp)

namespace {
// A tiny GPT-2 and a LoRA adapter saved for it (c_attn, r = 2), in s.dir/adapter.
std::unique_ptr<CausalLM> gpt2_with_adapter(const Scratch& s) {
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  LoraConfig c;
  c.r = 2;
  get_peft_model(*model, c);
  save_adapter(*model, c, s.dir / "adapter");
  return make_causal_lm(tiny_gpt2_config(), 1);  // a fresh base to load the adapter into
}
}  // namespace

TEST_CASE("peft: an adapter folder without adapter_config.json", "[robustness][peft]") {
  Scratch s("peft_nocfg");
  auto base = gpt2_with_adapter(s);
  fs::remove(s.dir / "adapter" / "adapter_config.json");
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter: no adapter_config.json (is it a peft adapter directory?)"));
}

TEST_CASE("peft: an adapter folder without adapter_model.safetensors", "[robustness][peft]") {
  Scratch s("peft_noweights");
  auto base = gpt2_with_adapter(s);
  fs::remove(s.dir / "adapter" / "adapter_model.safetensors");
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }), Contains("adapter: no adapter_model.safetensors"));
}

TEST_CASE("peft: adapter_config.json that is not JSON", "[robustness][peft]") {
  Scratch s("peft_json");
  auto base = gpt2_with_adapter(s);
  s.write("adapter/adapter_config.json", "{\"r\": 2, \"peft_type\": \"LORA\"");
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }), Contains("adapter_config.json: invalid JSON"));
}

TEST_CASE("peft: a peft_type that is a number", "[robustness][peft]") {
  Scratch s("peft_type");
  auto base = gpt2_with_adapter(s);
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["peft_type"] = 3; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_config.json: \"peft_type\" must be a string, got 3"));
}

TEST_CASE("peft: r that is a string", "[robustness][peft]") {
  Scratch s("peft_r");
  auto base = gpt2_with_adapter(s);
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["r"] = "2"; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_config.json: \"r\" must be an integer"));
}

TEST_CASE("peft: a target_modules regex galvani cannot run, and one that backtracks", "[robustness][peft]") {
  Scratch s("peft_regex");
  auto base = gpt2_with_adapter(s);
  // Lookahead is valid Python but not RE2: refused, naming the file and the pattern.
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["target_modules"] = ".*(?=c_attn).*"; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_config.json: target_modules: '.*(?=c_attn).*' is not a regular expression galvani can match"));
  // Exponential for a backtracking engine (std::regex: over 20 s a name); RE2 answers at once,
  // and the pattern matches no module, which is the usual error.
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["target_modules"] = "(.*.*)*x"; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }), Contains("match no module"));
}

TEST_CASE("peft: lora_alpha that is a string", "[robustness][peft]") {
  Scratch s("peft_alpha");
  auto base = gpt2_with_adapter(s);
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["lora_alpha"] = "sixteen"; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_config.json: \"lora_alpha\" must be a number, got \"sixteen\""));
}

TEST_CASE("peft: r disagrees with the adapter's weights", "[robustness][peft]") {
  Scratch s("peft_rank");
  auto base = gpt2_with_adapter(s);
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["r"] = 4; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_model.safetensors: module 'transformer.h.0.attn.c_attn'") && Contains("r = 4"));
}

TEST_CASE("peft: target_modules that match nothing", "[robustness][peft]") {
  Scratch s("peft_targets");
  auto base = gpt2_with_adapter(s);
  edit_json(s.dir / "adapter" / "adapter_config.json", [](json& j) { j["target_modules"] = {"q_proj"}; });
  CHECK_THAT(error_of([&] { load_adapter(*base, s.dir / "adapter"); }),
             Contains("adapter_config.json") && Contains("[\"q_proj\"] match no module"));
}

TEST_CASE("peft: an adapter for another base model", "[robustness][peft]") {
  Scratch s("peft_base");
  gpt2_with_adapter(s);
  GPT2Config wider = tiny_gpt2_config();
  wider.n_embd = 16;
  auto other = make_causal_lm(wider, 1);
  CHECK_THAT(error_of([&] { load_adapter(*other, s.dir / "adapter"); }),
             Contains("module 'transformer.h.0.attn.c_attn'") && Contains("is the adapter for another base model"));
}

// ================================================================== bitsandbytes quantization_config

TEST_CASE("4-bit: a quantization_config of another method", "[robustness][bnb]") {
  Scratch s("bnb_method");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}}; });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("config.json: quantization_config: quant_method is \"gptq\"; galvani reads only \"bitsandbytes\""));
}

TEST_CASE("4-bit: an unknown bnb_4bit_quant_type", "[robustness][bnb]") {
  json j = BitsAndBytesConfig::qlora().to_json();
  j["bnb_4bit_quant_type"] = "int3";
  CHECK_THAT(error_of([&] { BitsAndBytesConfig::from_json(j, "m/config.json: quantization_config"); }),
             Contains("m/config.json: quantization_config: bnb_4bit_quant_type \"int3\""));
}

TEST_CASE("4-bit: load_in_4bit that is a string", "[robustness][bnb]") {
  json j = BitsAndBytesConfig::qlora().to_json();
  j["load_in_4bit"] = "yes";
  CHECK_THAT(error_of([&] { BitsAndBytesConfig::from_json(j, "m/config.json: quantization_config"); }),
             Contains("m/config.json: quantization_config: load_in_4bit has the wrong type (\"yes\")"));
}

TEST_CASE("4-bit: a float checkpoint that says it is 4-bit", "[robustness][bnb]") {
  Scratch s("bnb_float");
  const fs::path dir = saved_tiny_gpt2(s);
  edit_json(dir / "config.json", [](json& j) { j["quantization_config"] = BitsAndBytesConfig::qlora().to_json(); });
  CHECK_THAT(error_of([&] { load_causal_lm(dir); }),
             Contains("model: the checkpoint has no tensor for: transformer.h.0.attn.c_attn.weight.absmax"));
}

// ================================================================== CSV (data/csv.hpp, data/dataset.hpp, data/split.hpp)

TEST_CASE("csv: an unreadable file (chmod 000)", "[robustness][csv]") {
  if (running_as_root()) {
    WARN("skipped: running as root, who can read a chmod 000 file");
    return;
  }
  Scratch s("csv_unreadable");
  const fs::path p = s.write("locked.csv", "text\nhello\n");
  fs::permissions(p, fs::perms::none);
  CHECK_THAT(error_of([&] { read_csv(p); }), Contains("locked.csv' (it exists but cannot be read)"));
}

TEST_CASE("csv: a directory where the file should be", "[robustness][csv]") {
  Scratch s("csv_dir");
  fs::create_directories(s.dir / "chunks.csv");
  CHECK_THAT(error_of([&] { read_csv(s.dir / "chunks.csv"); }), Contains("chunks.csv' (it is a directory)"));
}

TEST_CASE("csv: only a header", "[robustness][csv]") {
  Scratch s("csv_header");
  const fs::path p = s.write("header.csv", "text\n");
  const Table t = read_text_csv(p);
  CHECK(t.rows() == 0);
  CHECK_THAT(error_of([&] { train_test_split(t, 0.2, 42); }),
             Contains("train_test_split: 0 rows with test_size 0.2 leave the train or the test part empty"));
}

TEST_CASE("csv: every row blank", "[robustness][csv]") {
  Scratch s("csv_blank");
  const fs::path p = s.write("blank.csv", "text\n\"  \"\n\"\"\n\" \t\"\n");
  DropReport rep;
  const Table t = read_text_csv(p, "text", &rep);
  CHECK(t.rows() == 0);
  CHECK(rep.total() == 3);
}

TEST_CASE("csv: a quote that never closes", "[robustness][csv]") {
  Scratch s("csv_quote");
  const fs::path p = s.write("quote.csv", "text\nfine\n\"never closed\nstill inside\n");
  CHECK_THAT(error_of([&] { read_text_csv(p); }), Contains("quote.csv:3:1:") && Contains("never closed"));
}

TEST_CASE("dataset: too few rows to split", "[robustness][csv]") {
  Scratch s("csv_one");
  const fs::path p = s.write("one.csv", "text\nonly one row\n");
  CHECK_THAT(error_of([&] { train_test_split(read_text_csv(p), 0.2, 42); }),
             Contains("1 rows with test_size 0.2 leave the train or the test part empty; use more rows"));
}

// ================================================================== Trainer (train/trainer.hpp)

namespace {
Trainer::Rows rows(int64_t n) {
  Trainer::Rows r;
  for (int64_t i = 0; i < n; ++i) r.push_back({int32_t(i % 16), int32_t((i + 3) % 16), int32_t((i * 5) % 16)});
  return r;
}
}  // namespace

TEST_CASE("trainer: an empty training split", "[robustness][trainer]") {
  Scratch s("tr_empty");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  CHECK_THAT(error_of([&] { Trainer(*model, testing::quick_training_args(s.dir), {}, 0); }),
             Contains("Trainer: the training split has no rows"));
}

TEST_CASE("trainer: batch size 0", "[robustness][trainer]") {
  Scratch s("tr_batch");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.per_device_train_batch_size = 0;
  CHECK_THAT(error_of([&] { Trainer(*model, a, rows(4), 0); }),
             Contains("Trainer: batch size and gradient_accumulation_steps must be positive"));
}

TEST_CASE("trainer: resume from a folder that does not exist", "[robustness][trainer]") {
  Scratch s("tr_nofolder");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.resume_from_checkpoint = s.path("checkpoint-7");
  CHECK_THAT(error_of([&] { Trainer(*model, a, rows(4), 0).train(); }),
             Contains("resume_from_checkpoint: ") && Contains("checkpoint-7 is not a folder"));
}

TEST_CASE("trainer: resume from a folder without trainer_state.json", "[robustness][trainer]") {
  Scratch s("tr_nostate");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  fs::create_directories(s.dir / "checkpoint-2");
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.resume_from_checkpoint = "latest";
  CHECK_THAT(error_of([&] { Trainer(*model, a, rows(4), 0).train(); }),
             Contains("checkpoint-2 has no trainer_state.json"));
}

TEST_CASE("trainer: a trainer_state.json that is not JSON", "[robustness][trainer]") {
  Scratch s("tr_badstate");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  s.write("checkpoint-2/trainer_state.json", "{\"global_step\": 2,");
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.resume_from_checkpoint = "latest";
  CHECK_THAT(error_of([&] { Trainer(*model, a, rows(4), 0).train(); }),
             Contains("checkpoint-2/trainer_state.json: invalid JSON"));
}

TEST_CASE("trainer: resume from a checkpoint of another model", "[robustness][trainer]") {
  Scratch s("tr_other");
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.max_steps = 1;
  a.save_steps = 1;
  {
    auto model = make_causal_lm(tiny_gpt2_config(), 1);
    Trainer(*model, a, rows(4), 0, {}, [](const CausalLM& m, const fs::path& d) { save_causal_lm(m, d); }).train();
  }
  GPT2Config wider = tiny_gpt2_config();
  wider.n_embd = 16;
  auto other = make_causal_lm(wider, 1);
  a.resume_from_checkpoint = "latest";
  CHECK_THAT(error_of([&] { Trainer(*other, a, rows(4), 0).train(); }),
             Contains("checkpoint-1") && Contains("transformer.") && Contains("in the checkpoint but"));
}

TEST_CASE("trainer: an on_nonfinite policy it does not know", "[robustness][trainer]") {
  Scratch s("tr_policy");
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  TrainingArguments a = testing::quick_training_args(s.dir);
  a.on_nonfinite = "ignore";
  CHECK_THAT(error_of([&] { Trainer(*model, a, rows(4), 0); }),
             Contains("Trainer: on_nonfinite is \"ignore\"; use \"stop\" or \"skip\""));
}

// ================================================================== generation (eval/generate.hpp)

TEST_CASE("generate: a prompt longer than the context", "[robustness][generate]") {
  auto model = make_causal_lm(tiny_gpt2_config(), 1);  // n_positions 8
  const std::vector<int64_t> prompt(12, 1);
  CHECK_THAT(error_of([&] { generate(*model, prompt, GenerationOptions{}); }),
             Contains("generate: the prompt (12 tokens) fills the context of 8"));
}

TEST_CASE("generate: an empty prompt", "[robustness][generate]") {
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  CHECK_THAT(error_of([&] { generate(*model, std::vector<int64_t>{}, GenerationOptions{}); }),
             Contains("generate: the prompt has no tokens"));
}

TEST_CASE("generate: an absurd max_new_tokens stops at the end of the context", "[robustness][generate]") {
  auto model = make_causal_lm(tiny_gpt2_config(), 1);
  GenerationOptions o;
  o.max_new_tokens = std::numeric_limits<int64_t>::max();
  o.stop_at_eos = false;
  const std::vector<int64_t> out = generate(*model, std::vector<int64_t>{1, 2, 3}, o);
  CHECK(out.size() == 6);  // 8 positions, 3 for the prompt; the last new token needs none
  CHECK_THAT(context_limit_note(*model, 3, o), Contains("generation stops after 6 new tokens"));
}

// ================================================================== the table itself

// Every row of docs/robustness.md names a test that exists: `tests/test_x.cpp` "name" (a
// TEST_CASE or SECTION of that file) or CTest `name` (tests/CMakeLists.txt).
TEST_CASE("docs/robustness.md: every row names a test that exists", "[robustness][docs]") {
  const std::string doc = read_file(kSource / "docs/robustness.md");
  const std::string cmake = read_file(kSource / "tests/CMakeLists.txt");
  std::istringstream lines(doc);
  std::string line;
  const std::regex row(R"(^\| *(\d+) *\|)");
  const std::regex cpp_test(R"(`(tests/test_[a-z0-9_]+\.cpp)` "([^"]+)\")");
  const std::regex ctest(R"(CTest `([A-Za-z0-9_]+)`)");
  std::set<int> numbers;
  int rows_seen = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    ++rows_seen;
    INFO("row: " << line);
    const int n = std::stoi(m[1]);
    CHECK(numbers.insert(n).second);  // numbered once
    int tests = 0;
    for (std::sregex_iterator it(line.begin(), line.end(), cpp_test), end; it != end; ++it, ++tests) {
      const std::string file = read_file(kSource / (*it)[1].str());
      const std::string name = "\"" + (*it)[2].str() + "\"";
      CHECK((file.find("TEST_CASE(" + name) != std::string::npos || file.find("SECTION(" + name) != std::string::npos));
    }
    for (std::sregex_iterator it(line.begin(), line.end(), ctest), end; it != end; ++it, ++tests) {
      const std::string name = (*it)[1].str();
      CHECK(std::regex_search(cmake, std::regex("[( ]" + name + "[ )\n]")));
    }
    CHECK(tests >= 1);
  }
  CHECK(rows_seen >= 60);
  CHECK(int(numbers.size()) == rows_seen);
}
