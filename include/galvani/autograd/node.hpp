// autograd/node.hpp — one recorded op in the graph, and record() that makes it.
//
// Reverse-mode autodiff in three ideas (micrograd's, at tensor scale):
//  1. Each op that reads a tensor requiring grad leaves a Node on its output.
//     The Node knows its inputs (Edges) and a backward function that maps the
//     gradient of the output to one gradient per input.
//  2. An Edge points at the Node that made the input, or — for a leaf such as a
//     weight — at the leaf itself, whose .grad() the engine accumulates into.
//  3. backward() (engine.hpp) visits Nodes so that each runs only after every
//     consumer of its output has added its share of the gradient.
// The backward function captures what it needs (inputs, saved activations);
// nothing else is kept, so a forward pass costs no more memory than it must.
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "../core/tensor_base.hpp"
#include "grad_mode.hpp"

namespace galvani {

using Grads = std::vector<Tensor>;   // one per input; undefined = no gradient
using Needs = std::vector<bool>;     // which inputs want a gradient

struct Edge {
  std::shared_ptr<Node> fn;           // the op that produced the input (non-leaf), or
  std::shared_ptr<TensorImpl> leaf;   // the leaf tensor to accumulate into
  Shape shape;                        // the input's shape: its gradient must match
};

struct Node {
  std::string name;  // the op, for error messages ("matmul", "layer_norm", …)
  std::vector<Edge> next;
  Needs needs;
  std::function<Grads(const Tensor& grad_out, const Needs& needs)> backward;

  // Drops the backward function (and the tensors it saved) and the edges:
  // the graph is freed as backward() walks it.
  void release() {
    backward = nullptr;
    next.clear();
  }

  // Tearing down a long chain (x → op → op → … 10,000 times) would otherwise
  // recurse once per node and overflow the stack. The outermost destructor on
  // a thread drains a queue; nested ones only add to it.
  ~Node() {
    struct Garbage {
      std::function<Grads(const Tensor&, const Needs&)> fn;
      std::vector<Edge> edges;
    };
    thread_local std::vector<Garbage>* queue = nullptr;
    Garbage mine{std::move(backward), std::move(next)};
    if (queue) {
      queue->push_back(std::move(mine));
      return;
    }
    std::vector<Garbage> local;
    local.push_back(std::move(mine));
    queue = &local;
    while (!local.empty()) {
      Garbage item = std::move(local.back());
      local.pop_back();
      // `item` is destroyed here; any Node it frees lands in `local`.
    }
    queue = nullptr;
  }
};

// Attach `backward` to `out` when grad mode is on and an input requires grad.
// Returns `out`. `backward(grad_out, needs)` returns one gradient per input, in
// the order of `inputs`; it may leave an entry undefined where !needs[i].
template <class F>
Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, F&& backward) {
  if (!GradMode::is_enabled()) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || t.requires_grad();
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.requires_grad()) {
      e.shape = t.shape();
      if (t.grad_fn()) e.fn = t.grad_fn();
      else e.leaf = t.impl_ptr();
    }
    node->needs.push_back(t.requires_grad());
    node->next.push_back(std::move(e));
  }
  node->backward = std::forward<F>(backward);
  // A view or in-place-free op may return one of its inputs; give it a fresh handle.
  for (const Tensor& t : inputs)
    if (t.is_same(out)) out = out.as_strided(out.shape(), out.strides(), out.offset());
  out.set_grad_fn(std::move(node));
  return out;
}

}  // namespace galvani
