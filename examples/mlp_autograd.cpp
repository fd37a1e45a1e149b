// One forward and one backward pass of a two-layer MLP, printed step by step.
// docs/autograd.md walks through this program and its output.
//
//   build/mlp_autograd
#include <CLI/CLI.hpp>

#include <iostream>
#include <galvani/galvani.hpp>

using namespace galvani;

int main(int argc, char** argv) {
  CLI::App app{"A two-layer MLP: forward, loss, backward — the autograd engine at work"};
  uint64_t seed = 0;
  app.add_option("--seed", seed, "seed of the random weights and inputs")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Generator gen(seed);
  // Data: 2 examples with 3 features each, and a target per example.
  Tensor x = rand_normal({2, 3}, 0, 1, gen);                            // (B=2, in=3)
  Tensor y = Tensor::from_vector<float>({1.0f, -1.0f}, {2, 1});         // (B=2, 1)
  // Parameters: leaves that require grad. Linear layout: W (out, in).
  Tensor w1 = rand_normal({4, 3}, 0, 0.5, gen).requires_grad_();       // (hidden=4, in=3)
  Tensor b1 = Tensor::zeros({4}).requires_grad_();                      // (4)
  Tensor w2 = rand_normal({1, 4}, 0, 0.5, gen).requires_grad_();       // (1, hidden=4)

  // Forward: every op that reads a tensor requiring grad records a Node.
  Tensor h = linear(x, w1, b1);        // (2, 4)   node "linear"
  Tensor a = gelu_tanh(h);             // (2, 4)   node "gelu_tanh"
  Tensor out = linear(a, w2);          // (2, 1)   node "linear"
  Tensor diff = out - y;               // (2, 1)   node "sub"
  Tensor loss = mean(diff * diff);     // ()       nodes "mul", "mean" (via "sum")
  std::cout << "x    = " << x << "\nh    = " << h << "\na    = " << a << "\nout  = " << out
            << "\nloss = " << loss << "\n\n";

  // The graph, walked from the loss back to the leaves (first input of each node).
  std::cout << "graph: loss";
  for (auto node = loss.grad_fn(); node;) {
    std::cout << " <- " << node->name;
    const Edge* next = nullptr;
    for (const Edge& e : node->next)
      if (e.fn) { next = &e; break; }
    node = next ? next->fn : nullptr;
  }
  std::cout << "\n\n";

  // Backward: gradients flow from the loss to every leaf that requires grad.
  loss.backward();
  std::cout << "dloss/dw1 = " << w1.grad() << "\ndloss/db1 = " << b1.grad() << "\ndloss/dw2 = " << w2.grad()
            << "\n\n";

  // Check one gradient by finite differences: nudge w2[0, 0] by ±h. In f64,
  // so the difference quotient is not drowned by float32 rounding.
  const double hstep = 1e-6;
  auto f64 = [](const Tensor& t) { return t.detach().to(DType::f64); };
  auto loss_at = [&](double delta) {
    NoGradGuard no_grad;
    Tensor w = f64(w2).clone();
    w.data<double>()[0] += delta;
    Tensor o = linear(gelu_tanh(linear(f64(x), f64(w1), f64(b1))), w) - f64(y);
    return mean(o * o).item();
  };
  const double numeric = (loss_at(hstep) - loss_at(-hstep)) / (2 * hstep);
  std::cout << "dloss/dw2[0,0]: autograd " << w2.grad().to_vector<float>()[0] << ", finite difference " << numeric
            << "\n";
  // The graph is freed: a second backward through it is an error.
  try {
    loss.backward();
  } catch (const Error& e) {
    std::cout << "second backward: " << e.what() << "\n";
  }
  return 0;
}
