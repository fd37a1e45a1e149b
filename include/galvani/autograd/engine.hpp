// autograd/engine.hpp — backward(): walk the graph in reverse topological order.
//
// The walk is iterative (no recursion limit): first count, for every Node, how
// many edges point at it; then run a Node once all those consumers have passed
// their gradient down. Gradients reaching the same Node or leaf are summed —
// that is what makes a tensor used twice (x * x) get both contributions.
#pragma once
#include <unordered_map>
#include <unordered_set>

#include "../core/dispatch.hpp"
#include "../core/record_function.hpp"
#include "../core/strided.hpp"
#include "../core/tensor_base.hpp"
#include "../core/tensor_data.hpp"
#include "node.hpp"

namespace galvani {

namespace detail {

// a + b for two float tensors of one shape, into a fresh contiguous tensor.
inline Tensor add_for_grad(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch("backward (accumulate)", {{"gradient", a}, {"gradient", b}}, FloatTypes{a.dtype()}, [&]<class T>() {
    GALVANI_CHECK(b.dtype() == a.dtype(), "backward: gradients of dtypes ", dtype_name(a.dtype()), " and ",
                  dtype_name(b.dtype()), " reached the same tensor");
    T* o = static_cast<T*>(out.storage()->data());
    const T* pa = static_cast<const T*>(a.storage()->data());
    const T* pb = static_cast<const T*>(b.storage()->data());
    for_each_row<3>(a.shape(), {out.strides(), a.strides(), b.strides()}, {0, a.offset(), b.offset()},
                    [&](auto off, int64_t n, auto st) {
                      for (int64_t j = 0; j < n; ++j)
                        o[off[0] + j * st[0]] = pa[off[1] + j * st[1]] + pb[off[2] + j * st[2]];
                    });
  });
  return out;
}

// g in another dtype (what Tensor::to(DType) computes; backward records nothing anyway).
inline Tensor converted(const Tensor& g, DType dtype) {
  Tensor out = Tensor::empty(g.shape(), dtype, g.device());
  copy_into(out, g);
  return out;
}

// True when nothing but `t` (one handle) reaches its memory, and that memory is exactly a
// contiguous tensor of t's shape: then the engine may keep it as a .grad or add into it in
// place, as torch's AccumulateGrad ("steal the gradient": new_grad.use_count() <=
// num_expected_refs and the layout contract) and InputBuffer::accumulate do. A handle the
// caller or a node still holds, a view sharing the storage, or a slice of a bigger buffer
// fails the test, and the gradient is copied instead.
// Borrowed bytes (Storage::borrow: a file mapping, a caller's buffer) never qualify.
inline bool sole_owner_of_contiguous(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && t.storage()->owned() && t.offset() == 0 &&
         t.is_contiguous() && t.storage()->nbytes() == size_t(t.numel()) * itemsize(t.dtype());
}

// dst += src, in place: dst and src of one shape and dtype, any strides and offsets (a .grad the
// user set may be a slice or a transpose). The summation a + b is add_for_grad's, so the result
// is bit-identical to it.
inline void add_in_place_for_grad(const Tensor& dst, const Tensor& src) {
  GALVANI_CHECK(dst.shape() == src.shape(), "backward: a gradient of shape ", shape_str(src.shape()),
                " cannot accumulate into one of shape ", shape_str(dst.shape()));
  dispatch("backward (accumulate)", {{"gradient", dst}, {"gradient", src}}, FloatTypes{dst.dtype()}, [&]<class T>() {
    GALVANI_CHECK(src.dtype() == dst.dtype(), "backward: gradients of dtypes ", dtype_name(dst.dtype()), " and ",
                  dtype_name(src.dtype()), " reached the same tensor");
    T* o = static_cast<T*>(dst.storage()->data());
    const T* p = static_cast<const T*>(src.storage()->data());
    if (dst.is_contiguous() && src.is_contiguous()) {
      T* od = o + dst.offset();
      const T* ps = p + src.offset();
      const int64_t n = dst.numel();
#pragma omp parallel for simd schedule(static) if (n > (int64_t(1) << 16))
      for (int64_t i = 0; i < n; ++i) od[i] = od[i] + ps[i];
      return;
    }
    for_each_row<2>(dst.shape(), {dst.strides(), src.strides()}, {dst.offset(), src.offset()},
                    [&](auto off, int64_t n, auto st) {
                      for (int64_t j = 0; j < n; ++j) o[off[0] + j * st[0]] = o[off[0] + j * st[0]] + p[off[1] + j * st[1]];
                    });
  });
}

// A leaf's .grad gets g: kept as it is when the engine holds the only handle to it (no copy),
// else copied — the leaf owns its .grad, so later in-place accumulation never writes into a
// tensor some other node or the caller still holds; a second gradient is added in place
// (torch's AccumulateGrad with grad mode off: `variable.grad += new_grad`).
// `may_keep` false: always copy (the root's own gradient, which the caller passed in).
inline void accumulate_leaf(TensorImpl& leaf, const Tensor& g, bool may_keep = true) {
  if (!leaf.grad.defined()) {
    if (may_keep && g.dtype() == leaf.dtype && sole_owner_of_contiguous(g)) {
      leaf.grad = g.detach();
      return;
    }
    Tensor owned = Tensor::empty(g.shape(), leaf.dtype, g.device());
    copy_into(owned, g);
    leaf.grad = owned;
  } else {
    add_in_place_for_grad(leaf.grad, g.dtype() == leaf.dtype ? g : converted(g, leaf.dtype));
  }
}

// Runs the leaf's post-accumulate-grad hooks (Tensor::register_post_accumulate_grad_hook) on
// it, over a copy of the list, so a hook may remove itself.
inline void run_post_accumulate_grad_hooks(const std::shared_ptr<TensorImpl>& leaf) {
  if (leaf->post_accumulate_grad_hooks.empty()) return;
  const auto hooks = leaf->post_accumulate_grad_hooks;
  const Tensor t(leaf);
  for (const auto& [id, hook] : hooks) hook(t);
}

}  // namespace detail

inline void run_backward(const Tensor& root, const Tensor& root_grad) {
  NoGradGuard no_grad;  // the backward pass itself is not recorded
  if (root.is_leaf()) {
    detail::accumulate_leaf(*root.impl(), root_grad, /*may_keep=*/false);  // the caller's tensor
    detail::run_post_accumulate_grad_hooks(root.impl_ptr());
    return;
  }
  Node* start = root.grad_fn().get();

  // 1. Dependencies: how many edges point at each Node reachable from the root, and at each
  //    leaf that has post-accumulate-grad hooks (they run when its last edge is done).
  struct LeafCount {
    int edges = 0;
    bool got = false;  // a gradient arrived in this pass
  };
  std::unordered_map<Node*, int> deps;
  std::unordered_map<TensorImpl*, LeafCount> leaf_deps;
  std::vector<Node*> stack{start};
  std::unordered_set<Node*> seen{start};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (e.leaf && !e.leaf->post_accumulate_grad_hooks.empty()) ++leaf_deps[e.leaf.get()].edges;
      if (!e.fn) continue;
      ++deps[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  // 2. Run each Node once every consumer has contributed its gradient.
  std::unordered_map<Node*, Tensor> pending{{start, root_grad}};
  std::vector<std::shared_ptr<Node>> ready{root.grad_fn()};
  // A Node no gradient reached is not run, but the edges out of it still count as done, so a
  // Node or leaf that other paths reach runs (or gets its hooks) once those have all arrived.
  std::vector<std::shared_ptr<Node>> skipped;
  auto edge_done = [&](const Edge& e, bool got) {
    if (e.leaf) {
      auto it = leaf_deps.find(e.leaf.get());
      if (it != leaf_deps.end()) {
        it->second.got |= got;
        if (--it->second.edges == 0 && it->second.got) detail::run_post_accumulate_grad_hooks(e.leaf);
      }
    }
    if (e.fn && --deps[e.fn.get()] == 0) {
      if (pending.count(e.fn.get())) ready.push_back(e.fn);
      else skipped.push_back(e.fn);  // no gradient arrived at all (every path gave none)
    }
  };
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor grad = std::move(pending[node.get()]);
    pending.erase(node.get());
    if (!node->backward)
      throw Error(detail::cat("backward: the graph through '", node->name,
                              "' was already freed by an earlier backward() call"));
    Grads grads;
    {
      profiler::RecordFunction scope("autograd: ", node->name);  // the kernels inside record themselves
      grads = node->backward(grad, node->needs);
    }
    GALVANI_CHECK(grads.size() == node->next.size(), "backward of '", node->name, "' returned ",
                  grads.size(), " gradients for ", node->next.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = node->next[i];
      if (!e.fn && !e.leaf) continue;
      const Tensor& g = grads[i];
      if (g.defined()) {
        GALVANI_CHECK(g.shape() == e.shape, "backward of '", node->name, "' gave input ", i,
                      " a gradient of shape ", shape_str(g.shape()), ", expected ", shape_str(e.shape));
        if (e.leaf) {
          detail::accumulate_leaf(*e.leaf, g);
        } else {
          Tensor& slot = pending[e.fn.get()];
          if (!slot.defined()) slot = g;
          else if (slot.dtype() == g.dtype() && detail::sole_owner_of_contiguous(slot))
            detail::add_in_place_for_grad(slot, g);  // torch's InputBuffer::accumulate: in place when it may
          else slot = detail::add_for_grad(slot, g);
        }
      }
      edge_done(e, g.defined());
    }
    node->release();
    while (!skipped.empty()) {
      std::shared_ptr<Node> n = std::move(skipped.back());
      skipped.pop_back();
      for (const Edge& e : n->next) edge_done(e, false);
      n->release();
    }
  }
}

inline void Tensor::backward(const Tensor& grad) const {
  check_defined("backward");
  if (!requires_grad())
    throw Error(detail::cat("backward: the tensor of shape ", shape_str(shape()),
                            " does not require grad (no input of the computation had requires_grad set)"));
  Tensor g = grad;
  if (!g.defined()) {
    if (numel() != 1)
      throw Error(detail::cat("backward: a gradient can be implied only for a scalar output, but this tensor has shape ",
                              shape_str(shape()), "; pass backward(grad) or reduce it (sum/mean) first"));
    g = Tensor::ones(shape(), dtype(), device());
  }
  GALVANI_CHECK(g.shape() == shape(), "backward: grad of shape ", shape_str(g.shape()),
                " does not match the tensor's shape ", shape_str(shape()));
  run_backward(*this, g);
}

}  // namespace galvani
