// eval/generate.hpp — text generation with a KV cache, Hugging Face style.
//
// Each step turns the last position's logits into the next token:
//   repetition penalty → (if sampling) temperature → top-k → top-p → pick.
// That is the order of transformers' logits processors and warpers. Greedy
// (the default, do_sample = false) takes the argmax, so it matches
// model.generate(max_new_tokens=…) token for token. Sampling draws from
// galvani's counter-based Generator: reproducible for a seed, but not the same
// draws as torch.multinomial.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "../core/random.hpp"
#include "../models/causal_lm.hpp"

namespace galvani {

struct GenerationOptions {
  int64_t max_new_tokens = 100;
  bool do_sample = false;          // false: greedy
  double temperature = 1.0;
  int64_t top_k = 50;              // transformers' default; 0 disables
  double top_p = 1.0;              // 1 disables
  double repetition_penalty = 1.0; // 1 disables; >1 discourages tokens already present
  uint64_t seed = 0;
  bool stop_at_eos = true;
};

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

// Generate up to max_new_tokens after `prompt`; returns only the new tokens
// (including the EOS that stopped it, as HF does).
template <class Id>
std::vector<int64_t> generate(CausalLM& model, const std::vector<Id>& prompt, const GenerationOptions& opt = {}) {
  GALVANI_CHECK(!prompt.empty(), "generate: the prompt has no tokens");
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<int64_t> context(prompt.begin(), prompt.end());
  const int64_t max_len = std::min<int64_t>(model.context_length(), int64_t(context.size()) + opt.max_new_tokens);
  GALVANI_CHECK(int64_t(context.size()) < model.context_length() || opt.max_new_tokens == 0, "generate: the prompt (",
                context.size(), " tokens) fills the context of ", model.context_length());
  KVCache cache = model.new_cache(1, max_len);
  Generator gen(opt.seed);
  const auto eos = model.eos_token_ids();
  std::vector<int64_t> out;
  Tensor step_ids = Tensor::from_vector(context, {1, int64_t(context.size())});
  while (int64_t(out.size()) < opt.max_new_tokens && cache.length + step_ids.size(1) <= max_len) {
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
