// eval/perplexity.hpp — how surprised the model is by held-out text.
//
// For a row of tokens x₁…x_n the model predicts x₂…x_n; the row's mean NLL is
//   nll = −(1/(n−1)) Σ log p(x_t | x_<t).
// Two perplexities are reported, because people mean both:
//   row-mean (the course's calc_perplexity): mean over rows of exp(nll_row) —
//     each row weighs the same, and by Jensen it is ≥ the corpus value;
//   corpus:   exp(Σ NLL over all predicted tokens / their count) — the
//     Hugging Face docs' definition, each token weighs the same.
// Rows longer than the context are truncated (and counted); rows with fewer
// than 2 tokens predict nothing and are skipped (and counted).
#pragma once
#include <cmath>
#include <vector>

#include "../models/causal_lm.hpp"

namespace galvani {

struct PerplexityResult {
  double row_mean_ppl = 0;     // the course's definition
  double corpus_ppl = 0;       // exp(total NLL / predicted tokens)
  double total_nll = 0;
  int64_t rows = 0;            // rows evaluated
  int64_t predicted_tokens = 0;
  int64_t truncated_rows = 0;  // longer than the context, cut to fit
  int64_t skipped_rows = 0;    // fewer than 2 tokens
  std::vector<double> row_nll; // mean NLL of each evaluated row
};

// Rows are batched `batch_size` at a time with right padding; padded positions
// are masked out of attention and of the loss, so each row's NLL is exactly
// what a batch of one would give.
template <class Row>
PerplexityResult perplexity(CausalLM& model, const std::vector<Row>& rows, int64_t batch_size = 8,
                            int64_t max_len = 0) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  if (max_len <= 0) max_len = model.context_length();
  PerplexityResult r;
  std::vector<std::vector<int64_t>> kept;
  for (const Row& row : rows) {
    if (row.size() < 2) { ++r.skipped_rows; continue; }
    std::vector<int64_t> ids(row.begin(), row.end());
    if (int64_t(ids.size()) > max_len) { ids.resize(size_t(max_len)); ++r.truncated_rows; }
    kept.push_back(std::move(ids));
  }
  for (size_t start = 0; start < kept.size(); start += size_t(batch_size)) {
    const size_t end = std::min(kept.size(), start + size_t(batch_size));
    const int64_t B = int64_t(end - start);
    int64_t T = 0;
    for (size_t i = start; i < end; ++i) T = std::max<int64_t>(T, int64_t(kept[i].size()));
    std::vector<int64_t> ids(size_t(B * T), 0), mask(size_t(B * T), 0), labels(size_t(B * T), -100);
    for (int64_t b = 0; b < B; ++b) {
      const auto& row = kept[start + size_t(b)];
      for (size_t t = 0; t < row.size(); ++t) {
        ids[size_t(b * T) + t] = row[t];
        mask[size_t(b * T) + t] = 1;
        labels[size_t(b * T) + t] = row[t];
      }
    }
    Tensor mask_t = Tensor::from_vector(mask, {B, T});
    Tensor logits = model.forward(Tensor::from_vector(ids, {B, T}), mask_t);
    std::vector<double> nll = host_values<double>(
        causal_lm_loss(logits, Tensor::from_vector(labels, {B, T}), Reduction::none), "perplexity (nll)");
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = int64_t(kept[start + size_t(b)].size()) - 1;  // predicted tokens
      double s = 0;
      for (int64_t t = 0; t < n; ++t) s += nll[size_t(b * T + t)];
      r.row_nll.push_back(s / double(n));
      r.total_nll += s;
      r.predicted_tokens += n;
    }
  }
  r.rows = int64_t(r.row_nll.size());
  double sum_ppl = 0;
  for (double n : r.row_nll) sum_ppl += std::exp(n);
  r.row_mean_ppl = r.rows ? sum_ppl / double(r.rows) : std::nan("");
  r.corpus_ppl = r.predicted_tokens ? std::exp(r.total_nll / double(r.predicted_tokens)) : std::nan("");
  model.train(was_training);
  return r;
}

// The baseline a model must beat to have learnt more than word frequencies:
// the perplexity of the test tokens under the train split's unigram
// distribution (add-one smoothed over the vocabulary), counted over the same
// predicted positions (every token but the first of each row).
template <class Row>
double unigram_perplexity(const std::vector<Row>& train, const std::vector<Row>& test, int64_t vocab_size) {
  std::vector<double> counts(size_t(vocab_size), 1.0);  // add-one smoothing
  double total = double(vocab_size);
  for (const Row& r : train)
    for (auto id : r) { counts[size_t(id)] += 1; total += 1; }
  double nll = 0;
  int64_t n = 0;
  for (const Row& r : test)
    for (size_t t = 1; t < r.size(); ++t) { nll -= std::log(counts[size_t(r[t])] / total); ++n; }
  return n ? std::exp(nll / double(n)) : std::nan("");
}

}  // namespace galvani
