// The autograd engine: accumulation, deep graphs, grad mode, detach, freeing, errors.
#include <catch2/catch.hpp>

#include <galvani/galvani.hpp>

using namespace galvani;

TEST_CASE("a tensor used twice gets both gradient contributions", "[autograd]") {
  Tensor x = Tensor::from_vector<double>({1.0, 2.0, 3.0}).requires_grad_();
  Tensor y = sum(x * x + x);  // dy/dx = 2x + 1
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 5.0, 7.0});
  // A second backward through a new graph accumulates into .grad, like torch.
  sum(x * 2.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5.0, 7.0, 9.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("diamond-shaped graphs run each node once, after all consumers", "[autograd]") {
  Tensor x = Tensor::from_vector<double>({2.0}).requires_grad_();
  Tensor a = x * 3.0;       // a = 3x
  Tensor b = a * a;         // b = 9x²
  Tensor c = exp(a) + b;    // c = e^{3x} + 9x²
  c.backward(Tensor::ones({1}, DType::f64));
  CHECK(x.grad().item() == Approx(3 * std::exp(6.0) + 18 * 2.0));
}

TEST_CASE("a 10,000-node chain backpropagates and frees without recursion", "[autograd]") {
  Tensor x = Tensor::from_vector<double>({1.0}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 10000; ++i) y = y * 1.0001;
  sum(y).backward();
  CHECK(x.grad().item() == Approx(std::pow(1.0001, 10000)));
  // And a graph dropped without backward is torn down without recursion too.
  Tensor z = x;
  for (int i = 0; i < 200000; ++i) z = z + 1.0;
  z = Tensor();
  SUCCEED("a 200,000-node graph was destroyed");
}

TEST_CASE("the graph is freed after backward", "[autograd]") {
  Tensor x = Tensor::from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor y = sum(x * x);
  y.backward();
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("already freed"));
  // The node's saved tensors are gone: x is only held by us again.
  CHECK(x.impl_ptr().use_count() == 1);
}

TEST_CASE("NoGradGuard and detach stop recording", "[autograd]") {
  Tensor x = Tensor::from_vector<double>({1.0}).requires_grad_();
  {
    NoGradGuard ng;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
  }
  CHECK((x * 2.0).requires_grad());
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == x.storage());
  Tensor y = x * d;  // d is a constant here
  y.backward(Tensor::ones({1}, DType::f64));
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("backward on bad targets raises galvani::Error", "[autograd][errors]") {
  Tensor x = Tensor::from_vector<double>({1.0, 2.0}).requires_grad_();
  CHECK_THROWS_WITH((x * 2.0).backward(), Catch::Contains("only for a scalar output") && Catch::Contains("[2]"));
  Tensor c = Tensor::from_vector<double>({1.0});
  CHECK_THROWS_WITH((c * 2.0).backward(), Catch::Contains("does not require grad"));
  CHECK_THROWS_WITH((x * 2.0).backward(Tensor::ones({3}, DType::f64)), Catch::Contains("does not match"));
}

TEST_CASE("gradients flow through views back to the base", "[autograd][views]") {
  Tensor x = Tensor::arange(6, DType::f64).view({2, 3}).detach().requires_grad_();
  Tensor y = sum(x.transpose(0, 1).narrow(0, 1, 2) * 2.0) + sum(x.select(0, 1).unsqueeze(0).expand({4, 3}));
  y.backward();
  // narrow(cols 1..2) * 2 → 2 on cols 1,2; select(row 1) expanded 4× → +4 on row 1.
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 2, 2, 4, 6, 6});
}

TEST_CASE("only inputs that need a gradient get one", "[autograd]") {
  Tensor w = Tensor::from_vector<double>({1.0, 2.0}, {1, 2}).requires_grad_();
  Tensor x = Tensor::from_vector<double>({3.0, 4.0}, {1, 2});
  Tensor y = sum(linear(x, w));
  y.backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3.0, 4.0});
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a graph that is never backpropagated is freed", "[autograd][memory]") {
  // Ops whose backward needs their own output must not keep it alive through
  // their node (a reference cycle would leak every forward-only graph).
  Tensor x = Tensor::from_vector<double>({0.5, 1.5, 2.5}, {1, 3}).requires_grad_();
  Tensor w = Tensor::from_vector<double>({1.0, 2.0, 3.0}, {1, 3}).requires_grad_();
  std::vector<std::function<Tensor()>> fwd = {
      [&] { return exp(x); }, [&] { return sqrt(x); }, [&] { return x / w; }, [&] { return softmax(x); },
      [&] { return log_softmax(x); }, [&] { return layer_norm(x, w.view({3}), Tensor()); },
      [&] { return gelu_tanh(x); }, [&] { return silu_mul(x, w); }, [&] { return rms_norm(x, w.view({3}), 1e-6); }};
  for (size_t i = 0; i < fwd.size(); ++i) {
    std::weak_ptr<TensorImpl> out;
    {
      Tensor y = fwd[i]();
      REQUIRE(y.requires_grad());
      out = y.impl_ptr();
    }
    INFO("op " << i);
    CHECK(out.expired());
  }
}

// The engine keeps a gradient it alone holds as the leaf's .grad (no copy) and adds later ones
// in place (torch's AccumulateGrad / InputBuffer rules). These check that no .grad ever shares
// memory with a tensor someone else holds.
TEST_CASE("accumulated gradients never alias: one gradient to two leaves, a caller's gradient, "
          "a kept .grad handle",
          "[autograd]") {
  const auto values = [](const Tensor& t) { return t.contiguous().to_vector<float>(); };
  SECTION("add's backward hands the same tensor to both inputs: each leaf gets its own copy") {
    Tensor a = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
    Tensor b = Tensor::from_vector<float>({4, 5, 6}).requires_grad_();
    (a + b).backward(Tensor::from_vector<float>({1, 1, 1}));
    CHECK(a.grad().storage() != b.grad().storage());
    a.grad().data<float>()[0] = 100.0f;  // an optimizer writing one gradient in place
    CHECK(values(b.grad()) == std::vector<float>{1, 1, 1});
  }
  SECTION("a leaf's gradient given by the caller is copied, not kept") {
    Tensor x = Tensor::from_vector<float>({1, 2}).requires_grad_();
    Tensor g = Tensor::from_vector<float>({3, 4});
    x.backward(g);
    g.data<float>()[0] = -1.0f;
    CHECK(values(x.grad()) == std::vector<float>{3, 4});
  }
  SECTION("a second backward adds in place into the existing .grad, and sums right") {
    Tensor w = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
    sum(w * w).backward();
    const Tensor first = w.grad();
    const void* before = first.data<float>();
    sum(w * w).backward();
    CHECK(w.grad().data<float>() == before);  // torch: variable.grad += new_grad (grad mode off)
    CHECK(values(w.grad()) == std::vector<float>{4, 8, 12});
  }
  SECTION("a .grad the user set to a slice (offset) or a transpose accumulates where it lives") {
    Tensor buffer = Tensor::zeros({10});
    Tensor w = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
    w.set_grad(buffer.narrow(0, 4, 3));  // elements 4..6 of the buffer
    sum(w * 2.0).backward();
    CHECK(values(buffer) == std::vector<float>{0, 0, 0, 0, 2, 2, 2, 0, 0, 0});
    Tensor m = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
    Tensor mt_buffer = Tensor::zeros({3, 2});
    m.set_grad(mt_buffer.t());  // (2, 3) view of a (3, 2) buffer
    (m * Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})).backward(Tensor::ones({2, 3}));
    CHECK(values(mt_buffer) == std::vector<float>{1, 4, 2, 5, 3, 6});
  }
  SECTION("a non-leaf used three times: pending gradients summed in place, values exact") {
    Tensor w = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
    Tensor h = w * 2.0;  // non-leaf
    Tensor y = h * 3.0 + h * 5.0 + h;
    y.backward(Tensor::from_vector<float>({1, 1, 1}));
    CHECK(values(w.grad()) == std::vector<float>{18, 18, 18});
  }
}

TEST_CASE("a Node no gradient reaches still counts as done: what lies behind it on other paths runs",
          "[autograd]") {
  // x -> a = 2x -> n = 5a -> b (an op whose backward gives no gradient) ; a -> c = 3a ; y = b + c.
  // n receives no gradient, so it never runs; a must still run once c's gradient arrives.
  Tensor x = Tensor::from_vector<float>({1, 2}).requires_grad_();
  Tensor a = x * 2.0;
  Tensor n = a * 5.0;
  Tensor b = record("gives_none", n.detach().clone(), {n}, [](const Tensor&, const Needs&) { return Grads{Tensor()}; });
  Tensor y = sum(b + a * 3.0);
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().contiguous().to_vector<float>() == std::vector<float>{6, 6});
}

TEST_CASE("register_post_accumulate_grad_hook runs once per backward, after the leaf's last gradient",
          "[autograd][hooks]") {
  SECTION("a leaf used twice: one call, and the hook sees the sum of both gradients") {
    Tensor w = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
    std::vector<std::vector<float>> seen;
    w.register_post_accumulate_grad_hook([&](const Tensor& t) { seen.push_back(t.grad().contiguous().to_vector<float>()); });
    Tensor y = sum(w * 2.0) + sum(w * w);  // d/dw = 2 + 2w
    y.backward();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == std::vector<float>{4, 6, 8});
    sum(w).backward();  // a second pass: called again, with the accumulated .grad
    REQUIRE(seen.size() == 2);
    CHECK(seen[1] == std::vector<float>{5, 7, 9});
  }
  SECTION("hooks run while backward is still going: the layers before have not run yet") {
    Tensor w1 = Tensor::from_vector<float>({1, 2}).requires_grad_();
    Tensor w2 = Tensor::from_vector<float>({3, 4}).requires_grad_();
    std::vector<std::string> order;
    w1.register_post_accumulate_grad_hook([&](const Tensor&) { order.push_back("w1"); });
    w2.register_post_accumulate_grad_hook([&](const Tensor& t) {
      order.push_back(t.grad().defined() ? "w2" : "w2 without grad");
      if (w1.grad().defined()) order.push_back("but w1 already has its gradient");
    });
    Tensor h = w1 * 2.0;   // first layer
    Tensor y = sum(h * w2);  // second layer: w2's gradient is final before h's backward runs
    y.backward();
    CHECK(order == std::vector<std::string>{"w2", "w1"});
  }
  SECTION("no gradient in this pass, no call; a leaf root gets its call; remove() unregisters") {
    Tensor used = Tensor::from_vector<float>({1}).requires_grad_();
    Tensor unused = Tensor::from_vector<float>({1}).requires_grad_();
    int used_calls = 0, unused_calls = 0;
    RemovableHandle h = used.register_post_accumulate_grad_hook([&](const Tensor&) { ++used_calls; });
    unused.register_post_accumulate_grad_hook([&](const Tensor&) { ++unused_calls; });
    sum(used * 2.0).backward();
    CHECK(used_calls == 1);
    CHECK(unused_calls == 0);
    unused.backward(Tensor::ones({1}));  // the root is the leaf itself
    CHECK(unused_calls == 1);
    h.remove();
    h.remove();  // idempotent
    sum(used * 2.0).backward();
    CHECK(used_calls == 1);
  }
  SECTION("behind a Node no gradient reaches: one call with the live paths' sum; none if no path is live") {
    Tensor w = Tensor::from_vector<float>({1, 2}).requires_grad_();
    Tensor dead_only = Tensor::from_vector<float>({1, 1}).requires_grad_();
    int w_calls = 0, dead_calls = 0;
    std::vector<float> at_call;
    w.register_post_accumulate_grad_hook([&](const Tensor& t) {
      ++w_calls;
      at_call = t.grad().contiguous().to_vector<float>();
    });
    dead_only.register_post_accumulate_grad_hook([&](const Tensor&) { ++dead_calls; });
    Tensor n = w * dead_only;  // reaches the loss only through a backward that gives nothing
    Tensor b = record("gives_none", n.detach().clone(), {n}, [](const Tensor&, const Needs&) { return Grads{Tensor()}; });
    sum(b + w * 3.0).backward();
    CHECK(w_calls == 1);
    CHECK(at_call == std::vector<float>{3, 3});
    CHECK(dead_calls == 0);
    CHECK_FALSE(dead_only.grad().defined());
  }
  SECTION("only a leaf that requires grad takes one") {
    Tensor w = Tensor::from_vector<float>({1}).requires_grad_();
    Tensor nonleaf = w * 2.0;
    CHECK_THROWS_WITH(nonleaf.register_post_accumulate_grad_hook([](const Tensor&) {}),
                      Catch::Contains("not a leaf that requires grad"));
    CHECK_THROWS_WITH(Tensor::from_vector<float>({1}).register_post_accumulate_grad_hook([](const Tensor&) {}),
                      Catch::Contains("not a leaf that requires grad"));
  }
  SECTION("inside a checkpointed segment the recompute is a pass of its own") {
    Tensor w = Tensor::from_vector<float>({1, 2}).requires_grad_();
    Tensor x = Tensor::from_vector<float>({3, 4}).requires_grad_();
    int calls = 0;
    std::vector<float> at_call;
    w.register_post_accumulate_grad_hook([&](const Tensor& t) {
      ++calls;
      at_call = t.grad().contiguous().to_vector<float>();
    });
    CheckpointOptions opt;
    opt.params = {w};
    Tensor out = checkpoint([&](const std::vector<Tensor>& in) { return in[0] * w; }, {x}, opt);
    sum(out * 2.0).backward();
    CHECK(calls == 1);
    CHECK(at_call == std::vector<float>{6, 8});
  }
}
