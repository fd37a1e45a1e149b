// data/collator.hpp — the causal-LM collator: Hugging Face's
// DataCollatorForLanguageModeling(tokenizer, mlm=False), with the tokenizer's
// pad token set to its EOS token as the course does.
//
// Given B token-id rows of different lengths it returns, row-major (B, T) with
// T the longest row (rounded up to pad_to_multiple_of when set):
//   input_ids      the rows, padded with pad_id on the padding side;
//   attention_mask 1 on real tokens, 0 on padding;
//   labels         input_ids, except that EVERY position holding pad_id is -100.
// The last rule is Hugging Face's (`labels[labels == pad_token_id] = -100`) and
// it is matched on purpose: with pad = eos, a real EOS token inside a row is
// masked too, so the model is never trained to predict EOS. GPT-2 adds no EOS
// when tokenizing, so the course's rows hold none unless the text spells
// "<|endoftext|>". The shift of labels by one happens in the loss, not here.
//
// Padding goes on the right by default (GPT-2's tokenizer); Mistral's Llama
// tokenizer pads on the left (padding_side = "left"), which PaddingSide::left
// reproduces.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include <galvani/core/error.hpp>

namespace galvani {

// A collated batch, plain data; the trainer turns it into tensors
// (batch_tensors.hpp).
struct Batch {
  int64_t batch = 0, seq = 0;            // B, T
  std::vector<int64_t> input_ids;        // (B, T) row-major
  std::vector<int64_t> attention_mask;   // (B, T): 1 = token, 0 = padding
  std::vector<int64_t> labels;           // (B, T): input_ids with -100 wherever input_ids == pad_id

  int64_t at(const std::vector<int64_t>& v, int64_t b, int64_t t) const { return v[size_t(b * seq + t)]; }
};

enum class PaddingSide { right, left };

struct CollatorOptions {
  int64_t pad_id = -1;                 // the tokenizer's pad id; the course sets pad = eos (50256 for GPT-2)
  PaddingSide padding_side = PaddingSide::right;
  int64_t pad_to_multiple_of = 0;      // 0: pad to the longest row only
  int64_t ignore_index = -100;         // what the loss skips (torch's CrossEntropyLoss default)
};

// `Row` is any container of integer ids (std::vector<int32_t> from the tokenizer).
template <class Row>
Batch collate_causal_lm(const std::vector<Row>& rows, const CollatorOptions& opt) {
  GALVANI_CHECK(!rows.empty(), "collate_causal_lm: the batch has no rows");
  GALVANI_CHECK(opt.pad_id >= 0, "collate_causal_lm: pad_id is not set; the course pads with the EOS id ",
                "(tokenizer.pad_token = tokenizer.eos_token), e.g. 50256 for GPT-2");
  GALVANI_CHECK(opt.pad_to_multiple_of >= 0, "collate_causal_lm: pad_to_multiple_of must be >= 0");
  Batch b;
  b.batch = int64_t(rows.size());
  for (const Row& r : rows) b.seq = std::max(b.seq, int64_t(r.size()));
  if (opt.pad_to_multiple_of > 0) b.seq = (b.seq + opt.pad_to_multiple_of - 1) / opt.pad_to_multiple_of * opt.pad_to_multiple_of;

  const auto n = size_t(b.batch * b.seq);
  b.input_ids.assign(n, opt.pad_id);
  b.attention_mask.assign(n, 0);
  for (int64_t i = 0; i < b.batch; ++i) {
    const Row& r = rows[size_t(i)];
    const int64_t len = int64_t(r.size());
    const int64_t first = opt.padding_side == PaddingSide::right ? 0 : b.seq - len;  // where the tokens start
    int64_t t = first;
    for (auto id : r) {
      b.input_ids[size_t(i * b.seq + t)] = int64_t(id);
      b.attention_mask[size_t(i * b.seq + t)] = 1;
      ++t;
    }
  }
  b.labels = b.input_ids;
  for (auto& l : b.labels)
    if (l == opt.pad_id) l = opt.ignore_index;  // pads AND real EOS tokens when pad = eos, as in HF
  return b;
}

}  // namespace galvani
