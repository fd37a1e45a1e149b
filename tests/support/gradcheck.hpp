// tests/support/gradcheck.hpp — compare autograd's gradients with finite differences.
//
// For f(inputs) → output, take L = Σ out ⊙ r with a fixed random r (so every
// output element matters), get dL/dx from backward(), and compare it with the
// central difference (L(x + h e_i) − L(x − h e_i)) / 2h, element by element.
// Inputs are f64. The error reported is norm-wise relative:
//   max_i |analytic_i − numeric_i| / max(max_i |numeric_i|, 1e-12).
#pragma once
#include <cmath>
#include <functional>
#include <vector>

#include <galvani/galvani.hpp>

namespace galvani::testing {

struct GradcheckResult {
  double max_rel_error = 0;  // over all inputs that require grad
  std::string worst;         // "input k, element i: analytic a vs numeric n"
};

inline GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                 std::vector<Tensor> inputs, double h = 1e-6, uint64_t seed = 1234) {
  for (auto& x : inputs)
    if (x.defined() && is_floating(x.dtype())) x = x.to(DType::f64).detach().requires_grad_();
  Tensor out0 = f(inputs);
  Generator gen(seed);
  Tensor r = rand_normal(out0.shape(), 0, 1, gen, DType::f64);
  auto loss_of = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    Tensor o = f(in);
    std::vector<double> ov = o.to_vector<double>(), rv = r.to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < ov.size(); ++i) s += ov[i] * rv[i];
    return s;
  };
  sum(mul(out0, r)).backward();

  GradcheckResult res;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_vector<double>()
                                                      : std::vector<double>(size_t(x.numel()), 0.0);
    std::vector<double> numeric(size_t(x.numel()));
    double* p = x.data<double>();  // inputs were made contiguous by to()/detach() above
    for (int64_t i = 0; i < x.numel(); ++i) {
      double keep = p[i];
      p[i] = keep + h;
      double up = loss_of(inputs);
      p[i] = keep - h;
      double down = loss_of(inputs);
      p[i] = keep;
      numeric[size_t(i)] = (up - down) / (2 * h);
    }
    double scale = 1e-12, worst = 0;
    size_t wi = 0;
    for (double v : numeric) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < numeric.size(); ++i) {
      double e = std::abs(analytic[i] - numeric[i]);
      if (e > worst) { worst = e; wi = i; }
    }
    if (worst / scale > res.max_rel_error) {
      res.max_rel_error = worst / scale;
      res.worst = detail::cat("input ", k, " element ", wi, ": analytic ", analytic[wi], " vs numeric ", numeric[wi]);
    }
  }
  return res;
}

// max |a − b| / max(1, max |b|): how far a result is from its reference, scaled
// so that large references do not need a looser tolerance.
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  GALVANI_CHECK(a.shape() == b.shape(), "max_rel_diff: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double worst = 0, scale = 1;
  for (size_t i = 0; i < va.size(); ++i) {
    worst = std::max(worst, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return worst / scale;
}

// A random f64 tensor for gradient checks.
inline Tensor randn64(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return rand_normal(shape, 0, 1, g, DType::f64);
}

}  // namespace galvani::testing

// CHECK_GRAD(f, inputs...): the gradient check every op test uses (needs <catch2/catch.hpp>).
#define CHECK_GRAD(f, ...)                                        \
  do {                                                            \
    auto r_ = ::galvani::testing::gradcheck(f, {__VA_ARGS__});    \
    INFO(r_.worst);                                               \
    CHECK(r_.max_rel_error < 1e-6);                               \
  } while (0)
