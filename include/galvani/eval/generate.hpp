// eval/generate.hpp — text generation with a KV cache, Hugging Face style.
//
// Each step turns the last position's logits into the next token:
//   repetition penalty → (if sampling) temperature → top-k → top-p → pick.
// That is the order of transformers' logits processors and warpers. Greedy
// (the default, do_sample = false) takes the argmax, so it matches
// model.generate(max_new_tokens=…) token for token. Sampling draws from
// galvani's counter-based Generator: reproducible for a seed, but not the same
// draws as torch.multinomial.
//
// Where the settings come from, as in transformers: a model directory's
// generation_config.json (else what transformers derives from config.json: its
// bos/eos/pad ids), then what the caller passes (generate()'s keyword arguments;
// a program's command-line flags). generation_options() does that resolution, and
// every program that generates goes through it, so an EOS list that only
// generation_config.json names stops generation everywhere.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "../core/random.hpp"
#include "../io/config.hpp"
#include "../models/causal_lm.hpp"

namespace galvani {

struct GenerationOptions {
  int64_t max_new_tokens = 100;    // < 0: unset, max_length decides
  int64_t max_length = 20;         // prompt + new tokens; used only when max_new_tokens < 0
  bool do_sample = false;          // false: greedy; temperature, top_k and top_p are then ignored
  double temperature = 1.0;
  int64_t top_k = 50;              // transformers' default; 0 disables
  double top_p = 1.0;              // 1 disables
  double repetition_penalty = 1.0; // 1 disables; >1 discourages tokens already present
  uint64_t seed = 0;
  bool stop_at_eos = true;
  std::optional<std::vector<int64_t>> eos_token_id;  // unset: the model config's; stops at any of them
  std::optional<int64_t> pad_token_id, bos_token_id;  // kept for callers; batch-1 generation needs neither

  // New tokens allowed after a prompt of `prompt_len`: max_new_tokens wins when set, else
  // max_length counts the prompt (transformers' rule).
  int64_t new_token_budget(int64_t prompt_len) const {
    return max_new_tokens >= 0 ? max_new_tokens : std::max<int64_t>(0, max_length - prompt_len);
  }
};

// What a caller says explicitly — generate()'s keyword arguments, a program's flags.
// Each set field wins over generation_config.json.
struct GenerationOverrides {
  std::optional<int64_t> max_new_tokens, max_length, top_k;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<std::vector<int64_t>> eos_token_id;
  std::optional<uint64_t> seed;
};

// transformers' resolution: generation_config.json's values, then the caller's.
inline GenerationOptions generation_options(const io::GenerationConfig& g, const GenerationOverrides& o = {}) {
  GenerationOptions opt;
  // transformers: max_new_tokens if set; else max_length (counting the prompt) if the file sets
  // it; with neither, "by default let's always generate 20 new tokens".
  const bool file_max_length = g.raw.is_object() && g.raw.contains("max_length") && !g.raw["max_length"].is_null();
  opt.max_new_tokens = g.max_new_tokens ? *g.max_new_tokens : file_max_length ? -1 : 20;
  opt.max_length = g.max_length;
  opt.do_sample = g.do_sample;
  opt.temperature = g.temperature;
  opt.top_k = g.top_k;
  opt.top_p = g.top_p;
  opt.repetition_penalty = g.repetition_penalty;
  opt.eos_token_id = g.eos_token_id;
  opt.pad_token_id = g.pad_token_id;
  opt.bos_token_id = g.bos_token_id;
  if (o.max_length) {  // an explicit max_length beats the file's max_new_tokens, as a kwarg does in HF
    opt.max_length = *o.max_length;
    opt.max_new_tokens = -1;
  }
  if (o.max_new_tokens) opt.max_new_tokens = *o.max_new_tokens;  // and max_new_tokens beats both
  if (o.do_sample) opt.do_sample = *o.do_sample;
  if (o.temperature) opt.temperature = *o.temperature;
  if (o.top_k) opt.top_k = *o.top_k;
  if (o.top_p) opt.top_p = *o.top_p;
  if (o.repetition_penalty) opt.repetition_penalty = *o.repetition_penalty;
  if (o.eos_token_id) opt.eos_token_id = *o.eos_token_id;
  if (o.seed) opt.seed = *o.seed;
  return opt;
}

// A model directory's generation defaults: generation_config.json, else derived from config.json.
inline io::GenerationConfig generation_config_of(const std::filesystem::path& model_dir) {
  if (std::filesystem::exists(model_dir / "generation_config.json"))
    return io::GenerationConfig::load(model_dir / "generation_config.json");
  return io::GenerationConfig::from_model_config(io::load_model_config(model_dir / "config.json"));
}

// A model built in memory (no directory): the defaults transformers derives from its config.
inline io::GenerationConfig generation_config_of(const CausalLM& model) {
  return io::GenerationConfig::from_model_config(io::parse_model_config(model.config_json()));
}

inline GenerationOptions generation_options(const std::filesystem::path& model_dir, const GenerationOverrides& o = {}) {
  return generation_options(generation_config_of(model_dir), o);
}

// Empty when the budget fits the model; else a sentence saying where generation will stop,
// for programs to print (a silent early stop looks like an EOS).
inline std::string context_limit_note(const CausalLM& model, int64_t prompt_len, const GenerationOptions& opt) {
  // The last new token needs no position of its own: it is predicted, never fed back.
  const int64_t want = opt.new_token_budget(prompt_len), room = model.context_length() - prompt_len + 1;
  if (want <= room) return {};
  return galvani::detail::cat("asked for ", want, " new tokens, but the model has ", model.context_length(),
                              " positions and the prompt takes ", prompt_len, ": generation stops after ",
                              std::max<int64_t>(room, 0), " new tokens");
}

namespace detail {

// HF RepetitionPenaltyLogitsProcessor: every token present in `context` gets its
// score divided by the penalty if positive, multiplied if negative.
inline void apply_repetition_penalty(std::vector<float>& logits, const std::vector<int64_t>& context, double penalty) {
  if (penalty == 1.0) return;
  std::vector<bool> seen(logits.size(), false);
  for (int64_t id : context) {
    if (id < 0 || size_t(id) >= logits.size() || seen[size_t(id)]) continue;
    seen[size_t(id)] = true;
    float& s = logits[size_t(id)];
    s = s < 0 ? float(s * penalty) : float(s / penalty);
  }
}

// Sample an index from logits after temperature, top-k and top-p filtering.
inline int64_t sample_token(std::vector<float> logits, const GenerationOptions& opt, Generator& gen) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (opt.temperature != 1.0)
    for (float& l : logits) l = float(l / opt.temperature);
  const size_t V = logits.size();
  if (opt.top_k > 0 && size_t(opt.top_k) < V) {
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (opt.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[size_t(opt.top_k - 1)];
    for (float& l : logits)
      if (l < kth) l = neg_inf;  // ties with the k-th value survive, as in HF
  }
  // Probabilities (stable softmax).
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(V);
  double z = 0;
  for (size_t i = 0; i < V; ++i) z += p[i] = std::exp(double(logits[i]) - mx);
  for (double& x : p) x /= z;
  if (opt.top_p < 1.0) {
    // HF TopPLogitsWarper: sort ascending, drop the tokens whose cumulative
    // probability is ≤ 1 − top_p, always keeping the most likely one.
    std::vector<size_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
    double cum = 0;
    for (size_t r = 0; r + 1 < V; ++r) {
      cum += p[order[r]];
      if (cum <= 1.0 - opt.top_p) p[order[r]] = 0;
    }
    double s = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x /= s;
  }
  double u = gen.uniform(), cum = 0;
  for (size_t i = 0; i < V; ++i) {
    cum += p[i];
    if (u < cum) return int64_t(i);
  }
  for (size_t i = V; i-- > 0;)
    if (p[i] > 0) return int64_t(i);
  return 0;
}

}  // namespace detail

// Generate up to opt.new_token_budget() tokens after `prompt` (fewer if the model's
// context ends first: see context_limit_note); returns only the new tokens
// (including the EOS that stopped it, as HF does).
template <class Id>
std::vector<int64_t> generate(CausalLM& model, const std::vector<Id>& prompt, const GenerationOptions& opt = {}) {
  GALVANI_CHECK(!prompt.empty(), "generate: the prompt has no tokens");
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<int64_t> context(prompt.begin(), prompt.end());
  const int64_t budget = opt.new_token_budget(int64_t(context.size()));
  // Compared, not added: prompt + budget would overflow for a budget near INT64_MAX.
  const int64_t max_len = budget >= model.context_length() - int64_t(context.size())
                              ? model.context_length()
                              : int64_t(context.size()) + budget;
  GALVANI_CHECK(int64_t(context.size()) < model.context_length() || budget == 0, "generate: the prompt (",
                context.size(), " tokens) fills the context of ", model.context_length());
  KVCache cache = model.new_cache(1, max_len);
  Generator gen(opt.seed);
  const std::vector<int64_t> eos = opt.eos_token_id ? *opt.eos_token_id : model.eos_token_ids();
  std::vector<int64_t> out;
  Tensor step_ids = Tensor::from_vector(context, {1, int64_t(context.size())});
  while (int64_t(out.size()) < budget && cache.length + step_ids.size(1) <= max_len) {
    Tensor logits = model.forward(step_ids, Tensor(), &cache);  // (1, T, V)
    Tensor last = logits.select(1, logits.size(1) - 1).select(0, 0);
    std::vector<float> l = last.to_vector<float>();
    detail::apply_repetition_penalty(l, context, opt.repetition_penalty);
    const int64_t next = opt.do_sample ? detail::sample_token(std::move(l), opt, gen)
                                       : int64_t(std::max_element(l.begin(), l.end()) - l.begin());
    out.push_back(next);
    context.push_back(next);
    if (opt.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    step_ids = Tensor::from_vector(std::vector<int64_t>{next}, {1, 1});
  }
  model.train(was_training);
  return out;
}

}  // namespace galvani
