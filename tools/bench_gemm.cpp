// bench_gemm — time galvani's GEMM and cross-entropy on the shapes training and decoding
// spend their time in.
//
//   build-native/bench_gemm [--threads N] [--reps R]
// Shapes: a square 1024³ for reference; the tiny model's lm_head forward (x·Wᵀ), input
// gradient and weight gradient at 2048 tokens; one decode step's lm_head (M = 1) for tiny
// (C = 128) and distilgpt2 (C = 768) in both weight layouts (x·Wᵀ as `linear` reads it,
// x·W as `conv1d_linear` reads it), reported as GB/s of weight streamed; a 50257-way
// cross-entropy forward + backward on (512, 50257) f32 logits; and the MLP nonlinearities
// (gelu_tanh on (512, 3072), silu_mul on (512, 1536)) forward + backward; and mixed precision:
// the decode step's product with the weight in bf16 (gemm_mixed<float, bf16>: half the bytes
// streamed) against f32, and one training-shaped linear, x(512,768)·Wᵀ(768,3072) forward +
// backward, in f32 and under bf16 autocast (rounding and 2-byte copies on top of f32 products).
//
// Before/after comparisons: build this file a second time against an older copy of
// include/ (it uses only mm_kernel, t2d and cross_entropy, which both have), run both
// binaries back to back and compare ratios: the machine's speed drifts over minutes. (The
// nonlinearities' cases also need gelu_tanh and silu_mul, which every version since 2026-11 has.)
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <galvani/galvani.hpp>

using namespace galvani;

namespace {

template <class F> double median_seconds(int reps, F&& f) {
  std::vector<double> ts;
  for (int r = 0; r <= reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r) ts.push_back(s);  // the first run warms up (and grows the heap)
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time galvani's GEMM and cross-entropy on training- and decoding-shaped problems"};
  int threads = omp_get_max_threads(), reps = 3, decode_reps = 20;
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str();
  app.add_option("--reps", reps, "timed repetitions of the large cases (median reported)")->capture_default_str();
  app.add_option("--decode-reps", decode_reps, "timed repetitions of the M = 1 cases")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  keep_freed_memory();  // as bench_train and the Trainer: no fresh pages per call
  Generator g(0);
  struct Case { const char* name; int64_t M, N, K; bool ta, tb; bool decode; };
  // ta: A is read transposed (strided); tb: B is read transposed (W (N, K) row-major, as linear has it).
  Case cases[] = {{"square 1024^3", 1024, 1024, 1024, false, false, false},
                  {"lm_head fwd  x(2048,128)·Wt(128,50257)", 2048, 50257, 128, false, true, false},
                  {"lm_head dx   g(2048,50257)·W(50257,128)", 2048, 128, 50257, false, false, false},
                  {"lm_head dW   gt(50257,2048)·x(2048,128)", 50257, 128, 2048, true, false, false},
                  {"decode x(1,128)·Wt(128,50257)", 1, 50257, 128, false, true, true},
                  {"decode x(1,128)·W(128,50257)", 1, 50257, 128, false, false, true},
                  {"decode x(1,768)·Wt(768,50257)", 1, 50257, 768, false, true, true},
                  {"decode x(1,768)·W(768,50257)", 1, 50257, 768, false, false, true},
                  {"prompt x(8,768)·Wt(768,50257)", 8, 50257, 768, false, true, true}};
  for (const Case& c : cases) {
    Tensor a = c.ta ? rand_normal({c.K, c.M}, 0, 1, g) : rand_normal({c.M, c.K}, 0, 1, g);
    Tensor b = c.tb ? rand_normal({c.N, c.K}, 0, 1, g) : rand_normal({c.K, c.N}, 0, 1, g);
    Tensor A = c.ta ? detail::t2d(a) : a, B = c.tb ? detail::t2d(b) : b;
    const double med = median_seconds(c.decode ? decode_reps : reps, [&] { Tensor out = detail::mm_kernel(A, B, "bench"); });
    std::printf("%-45s %8.3f ms %7.1f GFLOP/s %6.1f GB/s of B\n", c.name, med * 1e3,
                2.0 * double(c.M * c.N * c.K) / med / 1e9, double(c.N * c.K) * 4.0 / med / 1e9);
  }

  // Decoding with bf16 weights: the same product, W streamed in 2 bytes an element.
  for (const int64_t K : {128, 768}) {
    const int64_t Nn = 50257;
    const std::vector<float> xs = rand_normal({1, K}, 0, 1, g).to_vector<float>();
    const std::vector<float> w32 = rand_normal({Nn, K}, 0, 1, g).to_vector<float>();
    std::vector<bf16> w16(w32.size());
    for (size_t i = 0; i < w32.size(); ++i) w16[i] = bf16(w32[i]);
    std::vector<float> out(static_cast<size_t>(Nn));
    const double t32 = median_seconds(decode_reps, [&] {
      gemm<float>(1, Nn, K, xs.data(), K, 1, w32.data(), 1, K, out.data(), Nn);
    });
    const double t16 = median_seconds(decode_reps, [&] {
      gemm_mixed<float, bf16>(1, Nn, K, xs.data(), K, 1, w16.data(), 1, K, out.data(), Nn);
    });
    char name[64];
    std::snprintf(name, sizeof name, "decode x(1,%lld)·Wt bf16 weight", (long long)K);
    std::printf("%-45s %8.3f ms (f32 %.3f ms: %.2fx) %6.1f GB/s of B\n", name, t16 * 1e3, t32 * 1e3, t32 / t16,
                double(Nn * K) * 2.0 / t16 / 1e9);
  }
  // A training-shaped linear, forward + backward, f32 and under bf16 autocast.
  {
    Tensor xin = rand_normal({512, 768}, 0, 1, g).requires_grad_();
    Tensor w = rand_normal({3072, 768}, 0, 0.02, g).requires_grad_();
    Tensor dy = rand_normal({512, 3072}, 0, 1, g);
    const auto step = [&](bool amp) {
      xin.zero_grad(), w.zero_grad();
      Tensor y;
      {
        AutocastGuard guard(DType::bf16, amp);
        y = linear(xin, w);
      }
      y.backward(dy);
    };
    const double t32 = median_seconds(reps, [&] { step(false); });
    const double t16 = median_seconds(reps, [&] { step(true); });
    std::printf("%-45s %8.3f ms (f32 %.3f ms: %.2fx)\n", "linear fwd+bwd x(512,768)·Wt, bf16 autocast", t16 * 1e3,
                t32 * 1e3, t32 / t16);
  }

  // Cross-entropy at the tiny model's T = 256, batch 2 (one training step's logits).
  const int64_t N = 512, V = 50257;
  Tensor logits = rand_normal({N, V}, 0, 1, g);
  std::vector<int64_t> ids(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) ids[size_t(i)] = (i * 7919) % V;
  Tensor targets = Tensor::from_vector(ids, {N});
  const double fwd = median_seconds(reps, [&] { Tensor l = cross_entropy(logits, targets); });
  Tensor x = logits.detach().requires_grad_();
  const double both = median_seconds(reps, [&] {
    x.zero_grad();
    cross_entropy(x, targets).backward();
  });
  std::printf("%-45s %8.3f ms\n", "cross_entropy fwd (512,50257)", fwd * 1e3);
  std::printf("%-45s %8.3f ms\n", "cross_entropy fwd+bwd (512,50257)", both * 1e3);

  // The MLP nonlinearities on one training step's activations (batch 2 × 256 tokens): GPT-2's
  // gelu_tanh over distilgpt2's 3072-wide hidden layer, SwiGLU's silu_mul over SmolLM2's 1536.
  {
    Tensor h = rand_normal({512, 3072}, 0, 1, g).requires_grad_();
    Tensor dy = rand_normal({512, 3072}, 0, 1, g);
    const double t = median_seconds(reps, [&] {
      h.zero_grad();
      gelu_tanh(h).backward(dy);
    });
    std::printf("%-45s %8.3f ms\n", "gelu_tanh fwd+bwd (512,3072)", t * 1e3);
  }
  {
    Tensor gate = rand_normal({512, 1536}, 0, 1, g).requires_grad_(), up = rand_normal({512, 1536}, 0, 1, g).requires_grad_();
    Tensor dy = rand_normal({512, 1536}, 0, 1, g);
    const double t = median_seconds(reps, [&] {
      gate.zero_grad(), up.zero_grad();
      silu_mul(gate, up).backward(dy);
    });
    std::printf("%-45s %8.3f ms\n", "silu_mul fwd+bwd (512,1536)", t * 1e3);
  }
}
