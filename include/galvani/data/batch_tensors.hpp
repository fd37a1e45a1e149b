// data/batch_tensors.hpp — a collated Batch as int64 tensors of shape (B, T),
// what a model's forward and the loss take.
#pragma once
#include <galvani/core/tensor.hpp>
#include <galvani/data/collator.hpp>

namespace galvani {

struct BatchTensors {
  Tensor input_ids;       // (B, T) int64
  Tensor attention_mask;  // (B, T) int64
  Tensor labels;          // (B, T) int64, -100 = ignored
};

inline BatchTensors to_tensors(const Batch& b) {
  const Shape shape{b.batch, b.seq};
  return {Tensor::from_vector<int64_t>(b.input_ids, shape), Tensor::from_vector<int64_t>(b.attention_mask, shape),
          Tensor::from_vector<int64_t>(b.labels, shape)};
}

}  // namespace galvani
