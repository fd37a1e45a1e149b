// bench_gemm — GFLOP/s of galvani's GEMM on the shapes training spends its time in.
//
//   build-native/bench_gemm [--threads N] [--reps R]
// Shapes: the tiny model's lm_head forward (x·Wᵀ), its input gradient and its
// weight gradient, and a square 1024³ for reference.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <galvani/galvani.hpp>

using namespace galvani;

int main(int argc, char** argv) {
  CLI::App app{"GFLOP/s of galvani's GEMM on training-shaped products"};
  int threads = omp_get_max_threads(), reps = 3;
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str();
  app.add_option("--reps", reps, "timed repetitions (median reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  Generator g(0);
  struct Case { const char* name; int64_t M, N, K; bool ta, tb; };
  // ta: A is read transposed (strided); tb: B is read transposed.
  Case cases[] = {{"square 1024^3", 1024, 1024, 1024, false, false},
                  {"lm_head fwd  x(2048,128)·Wt(128,50257)", 2048, 50257, 128, false, true},
                  {"lm_head dx   g(2048,50257)·W(50257,128)", 2048, 128, 50257, false, false},
                  {"lm_head dW   gt(50257,2048)·x(2048,128)", 50257, 128, 2048, true, false}};
  for (const Case& c : cases) {
    Tensor a = c.ta ? rand_normal({c.K, c.M}, 0, 1, g) : rand_normal({c.M, c.K}, 0, 1, g);
    Tensor b = c.tb ? rand_normal({c.N, c.K}, 0, 1, g) : rand_normal({c.K, c.N}, 0, 1, g);
    Tensor A = c.ta ? detail::t2d(a) : a, B = c.tb ? detail::t2d(b) : b;
    std::vector<double> ts;
    for (int r = 0; r <= reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      Tensor out = detail::mm_kernel(A, B, "bench");
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r) ts.push_back(s);  // the first run warms up
    }
    std::sort(ts.begin(), ts.end());
    double med = ts[ts.size() / 2];
    std::printf("%-45s %8.1f ms %7.1f GFLOP/s\n", c.name, med * 1e3, 2.0 * double(c.M * c.N * c.K) / med / 1e9);
  }
}
