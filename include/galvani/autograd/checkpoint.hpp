// autograd/checkpoint.hpp — gradient (activation) checkpointing: pay a second forward pass
// to keep less memory, as torch.utils.checkpoint does.
//
// Where the memory goes. A forward pass in grad mode leaves, on every op's Node, what its
// backward needs: the op's inputs or outputs (node.hpp). For a decoder layer that is about a
// dozen (B, T, ·) tensors — the norms' inputs and statistics, q/k/v, the attention output and
// its log-sum-exp, the MLP's (B, T, I) hidden states (I = 4C in GPT-2, 3.5C in Mistral) —
// and all of it, for every layer, stays alive until backward() reaches that layer. With L
// layers that is L × (one layer's activations), the largest term of a training step's memory
// at long sequences.
//
// What checkpoint(fn, inputs) keeps instead. It runs fn with recording off (NoGradGuard), so
// fn's ops keep nothing; only its `inputs` are held, by one "checkpoint" Node on the output.
// When backward() reaches that Node it runs fn again, with recording on, on copies of the
// inputs cut from the outer graph (detached leaves), then backpropagates the incoming
// gradient through that fresh graph: the parameters fn uses get their gradient there (the
// engine accumulates into leaves wherever it meets them), and the detached inputs' .grad is
// what the Node hands on to the ops before it. A checkpointed decoder layer thus holds one
// (B, T, C) tensor, its input, between forward and backward; during backward one layer's
// activations exist at a time. Memory: L × (B, T, C) + one layer's activations, instead of
// L × (one layer's activations). Cost: every checkpointed forward runs twice (≈ a third more
// compute for a whole step, as forward ≈ ⅓ of forward + backward).
//
// Same numbers. The recompute must give the forward's values, so:
//   - random draws are replayed: each Generator in opt.preserve_rng (a model's generator,
//     which draws every dropout mask) has its state (core/random.hpp) saved before the
//     forward, set back for the recompute, and restored after it, so later draws are those
//     of a run without checkpointing — torch's preserve_rng_state=True;
//   - the autocast state (core/autocast.hpp) of the forward is set again for the recompute;
//   - ops compute the same with recording on or off (no op branches on grad mode), so the
//     recomputed graph is the forward's graph, op for op, and gradients are bit-identical to
//     a plain run's wherever each parameter gets its gradient from one place inside fn
//     (true of a decoder layer); tests/test_grad_checkpoint.cpp checks it on GPT-2 and Mistral.
//
// Whether the output needs a gradient. torch's non-reentrant checkpoint (transformers'
// default) gives the output a gradient when fn's result would have one — when an input or a
// parameter fn reads requires grad — so a LoRA adapter inside a layer whose input comes from
// frozen embeddings still trains. The parameters a C++ closure reads cannot be seen, so they
// are named in opt.params (a model passes the layer's parameters). With none named, only the
// inputs decide: torch's reentrant variant, where frozen embeddings need
// enable_input_require_grads() (models/causal_lm.hpp) for anything inside to train.
//
// Contract (as torch's): fn is pure given its inputs, the parameters and the generators'
// states; every tensor fn reads that is produced by the outer graph (needs a gradient and is
// not a leaf) must be passed in `inputs`, never captured — the recompute would otherwise run
// the outer graph's nodes from inside. fn must not mutate state that the second run would
// mutate again (a KV cache: the models never checkpoint with one).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "../core/autocast.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "engine.hpp"
#include "grad_mode.hpp"
#include "node.hpp"

namespace galvani {

// fn(inputs) → output; inputs in the order given to checkpoint() (undefined ones stay undefined).
using CheckpointFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct CheckpointOptions {
  // Generators fn draws from (dropout masks): replayed in the recompute (see above).
  std::vector<Generator*> preserve_rng;
  // Parameters fn reads: the output needs a gradient when one of these or an input does.
  std::vector<Tensor> params;
};

namespace detail {

// Sets each generator to a saved state for the recompute, and back to where it was after.
class ReplayRng {
 public:
  ReplayRng(const std::vector<Generator*>& gens, const std::vector<Generator::State>& saved) : gens_(gens) {
    for (size_t i = 0; i < gens_.size(); ++i) {
      now_.push_back(gens_[i]->state());
      gens_[i]->set_state(saved[i]);
    }
  }
  ~ReplayRng() {
    for (size_t i = 0; i < gens_.size(); ++i) gens_[i]->set_state(now_[i]);
  }
  ReplayRng(const ReplayRng&) = delete;
  ReplayRng& operator=(const ReplayRng&) = delete;

 private:
  const std::vector<Generator*>& gens_;
  std::vector<Generator::State> now_;
};

}  // namespace detail

// Runs fn(inputs) and keeps only `inputs` for backward, which recomputes fn (see the header
// comment). Without grad mode it is fn(inputs). When neither an input nor a listed parameter
// requires grad, the output does not either (and fn recorded nothing), as with torch's
// reentrant checkpoint: a parameter fn reads but opt.params leaves out gets no gradient.
inline Tensor checkpoint(CheckpointFn fn, std::vector<Tensor> inputs, CheckpointOptions opt = {}) {
  if (!GradMode::is_enabled()) return fn(inputs);
  bool needs_grad = false;
  for (const Tensor& t : inputs) needs_grad = needs_grad || t.requires_grad();
  for (const Tensor& p : opt.params) needs_grad = needs_grad || p.requires_grad();

  std::vector<Generator::State> rng;
  for (Generator* g : opt.preserve_rng) rng.push_back(g->state());
  // The recompute runs in backward, outside any autocast region: it gets the forward's (torch's
  // checkpoint does the same), so it computes the same values in the same precision.
  const bool amp = is_autocast_enabled();
  const DType amp_dtype = get_autocast_dtype();
  Tensor out;
  {
    NoGradGuard no_grad;  // fn's ops keep nothing: the point of checkpointing
    out = fn(inputs);
  }
  if (!needs_grad) return out;
  GALVANI_CHECK(out.defined(), "checkpoint: the function returned an undefined tensor");
  GALVANI_CHECK(is_floating(out.dtype()), "checkpoint: the function returned a ", dtype_name(out.dtype()),
                " tensor, which cannot carry a gradient");

  // One Node with an edge per input (empty where the input needs no gradient), as record()
  // builds — but made even when no input requires grad: parameters inside fn may.
  auto node = std::make_shared<Node>();
  node->name = "checkpoint";
  for (const Tensor& t : inputs) {
    Edge e;
    const bool req = t.requires_grad();
    if (req) {
      e.shape = t.shape();
      if (t.grad_fn()) e.fn = t.grad_fn();
      else e.leaf = t.impl_ptr();
    }
    node->needs.push_back(req);
    node->next.push_back(std::move(e));
  }
  node->backward = [fn = std::move(fn), inputs = std::move(inputs), gens = std::move(opt.preserve_rng),
                    rng = std::move(rng), amp, amp_dtype](const Tensor& grad_out, const Needs& needs) -> Grads {
    // The inputs again, as leaves of a graph of their own (same memory, no history).
    std::vector<Tensor> leaves;
    leaves.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].defined()) {
        leaves.emplace_back();
        continue;
      }
      Tensor d = inputs[i].detach();
      if (needs[i]) d.requires_grad_();
      leaves.push_back(std::move(d));
    }
    Tensor again;
    {
      detail::ReplayRng replay(gens, rng);  // the forward's dropout masks
      EnableGradGuard grad_on;              // backward() runs with recording off
      AutocastGuard precision(amp_dtype, amp);  // the forward's autocast state
      again = fn(leaves);
    }
    GALVANI_CHECK(again.shape() == grad_out.shape(), "checkpoint: the recomputed output has shape ",
                  shape_str(again.shape()), ", the forward's had ", shape_str(grad_out.shape()),
                  " (is the function pure given its inputs?)");
    // Parameters accumulate their .grad here; the leaves collect the inputs' gradients.
    if (again.requires_grad()) run_backward(again, grad_out);
    Grads grads(leaves.size());
    for (size_t i = 0; i < leaves.size(); ++i)
      if (needs[i]) grads[i] = leaves[i].grad();
    return grads;
  };
  // fn may return one of its inputs (an identity layer): give the output a handle of its own.
  out = out.as_strided(out.shape(), out.strides(), out.offset());
  out.set_grad_fn(std::move(node));
  return out;
}

}  // namespace galvani
