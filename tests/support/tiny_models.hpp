// tests/support/tiny_models.hpp — the toy task the Trainer tests share: rows whose tokens
// follow a rule a model can learn (each token a function of the previous two, over a
// vocabulary of 256), and a 2-layer GPT-2 and Mistral/Llama over the same vocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <galvani/models/gpt2.hpp>

namespace galvani::testing {

// Row r of the pattern: starts (r % 7, 1 + r % 5), then t_i = (3·t_{i-1} + t_{i-2} + 1) mod 256,
// `len` tokens in all.
inline std::vector<int32_t> pattern_row(int64_t r, int64_t len) {
  std::vector<int32_t> row = {int32_t(r % 7), int32_t(1 + r % 5)};
  while (int64_t(row.size()) < len) row.push_back((row[row.size() - 1] * 3 + row[row.size() - 2] + 1) % 256);
  return row;
}

// Rows 0 … n-1 of the pattern, `len` tokens each (a Trainer's Rows).
inline std::vector<std::vector<int32_t>> pattern_rows(int64_t n, int64_t len = 24) {
  std::vector<std::vector<int32_t>> rows;
  for (int64_t r = 0; r < n; ++r) rows.push_back(pattern_row(r, len));
  return rows;
}

// GPT-2 with vocab 256, 32 positions, d 32, 2 layers, 2 heads (HF's dropouts unless changed).
inline GPT2Config tiny_gpt2_config() {
  GPT2Config c;
  c.vocab_size = 256;
  c.n_positions = 32;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 2;
  return c;
}

// A Mistral (model_type "mistral") or Llama ("llama") with vocab 256, d 32, MLP 48, 2 layers, 4 query
// and 2 key/value heads (grouped-query attention); the rest is the class's defaults.
inline MistralConfig tiny_mistral_config(const std::string& model_type = "mistral") {
  MistralConfig c = MistralConfig::defaults(model_type);
  c.vocab_size = 256;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  return c;
}

}  // namespace galvani::testing
