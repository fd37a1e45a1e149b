// Tied weights saved under one name ([bug-reports] 1): checkpoints written by safetensors'
// save_model() keep one name of a tied pair and record the other in __metadata__;
// transformers loads them and so must galvani (fixtures from tools/gen_tied_fixtures.py).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/io/safetensors.hpp>
#include <galvani/models/auto.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
namespace fs = std::filesystem;

namespace {
const fs::path kTied = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/tied";

nlohmann::json reference(const fs::path& dir) {
  std::ifstream in(dir / "reference.json");
  return nlohmann::json::parse(in);
}
}  // namespace

TEST_CASE("a tied model saved under one name loads and gives transformers' logits", "[tied][fixture]") {
  for (const char* name : {"gpt2_save_model", "llama_save_model"}) {
    INFO(name);
    const fs::path dir = kTied / name;
    const auto ref = reference(dir);
    // The file really holds only the head's name, and the alias in its metadata.
    const auto keys = ref["tensors_in_file"].get<std::vector<std::string>>();
    CHECK(std::count(keys.begin(), keys.end(), "lm_head.weight") == 1);
    CHECK(ref["metadata"].size() == 1);
    const std::string embedding = ref["metadata"].begin().key();
    CHECK(std::count(keys.begin(), keys.end(), embedding) == 0);

    auto model = load_causal_lm(dir);
    model->eval();
    NoGradGuard ng;
    const auto ids = ref["input_ids"][0].get<std::vector<int64_t>>();
    Tensor logits = model->forward(Tensor::from_vector(ids, {1, int64_t(ids.size())}));
    const auto want = ref["logits"].get<std::vector<float>>();
    CHECK(testing::max_rel_diff(logits.flatten(), Tensor::from_vector(want)) < 1e-5);

    // Saving writes what transformers' save_pretrained writes for a tied model: one name.
    const fs::path out = fs::temp_directory_path() / (std::string("galvani_tied_") + name);
    fs::remove_all(out);
    save_causal_lm(*model, out);
    std::vector<std::string> saved;
    for (const auto& e : io::load_safetensors(out / "model.safetensors")) saved.push_back(e.name);
    std::sort(saved.begin(), saved.end());
    CHECK(saved == ref["save_pretrained_keys"].get<std::vector<std::string>>());
    // … and that directory loads back to the same logits.
    auto back = load_causal_lm(out);
    back->eval();
    CHECK(back->forward(Tensor::from_vector(ids, {1, int64_t(ids.size())})).to_vector<float>() ==
          logits.to_vector<float>());
    fs::remove_all(out);
  }
}

TEST_CASE("a metadata alias stands in only for a tensor the file lacks; strict still names what is missing",
          "[tied]") {
  const fs::path dir = kTied / "gpt2_save_model";
  const fs::path out = fs::temp_directory_path() / "galvani_tied_missing";
  fs::remove_all(out);
  fs::create_directories(out);
  fs::copy_file(dir / "config.json", out / "config.json");

  // The same file without its metadata: the head's name alone still fills the tied pair
  // (either name of a tied pair is accepted) …
  io::StateDict sd = io::load_safetensors(dir / "model.safetensors");
  io::save_safetensors(out / "model.safetensors", sd);
  CHECK_NOTHROW(load_causal_lm(out));

  // … but a weight that is really missing is still reported, by its name.
  io::StateDict no_ln = io::load_safetensors(dir / "model.safetensors");
  no_ln.erase("transformer.h.1.ln_2.bias");
  io::save_safetensors(out / "model.safetensors", no_ln, {{"transformer.wte.weight", "lm_head.weight"}});
  CHECK_THROWS_WITH(load_causal_lm(out), Catch::Contains("has no tensor for: transformer.h.1.ln_2.bias"));

  // An alias whose target is missing from the file is no alias: nothing is filled from it.
  io::StateDict no_head = io::load_safetensors(dir / "model.safetensors");
  no_head.erase("lm_head.weight");
  io::save_safetensors(out / "model.safetensors", no_head, {{"transformer.wte.weight", "lm_head.weight"}});
  CHECK_THROWS_WITH(load_causal_lm(out), Catch::Contains("has no tensor for: transformer.wte.weight"));
  fs::remove_all(out);
}
