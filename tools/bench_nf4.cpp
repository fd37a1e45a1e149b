// bench_nf4 — time the 4-bit linear (quant/nf4_matmul.hpp) against the f32 one on the shapes
// QLoRA training and decoding spend their time in.
//
//   build-native/bench_nf4 [--threads 2] [--tokens 512] [--reps 5] [--layers 30]
//
// Training shapes (M = --tokens rows of x): SmolLM2-135M's q/o (576×576), gate/up (1536×576) and
// down (576×1536) projections, GPT-2's c_attn (2304×768), c_fc (3072×768) and c_proj (768×3072),
// W as (out, in). For each: the f32 GEMM (what `linear` runs: x·Wᵀ, and dX = dY·W), the first
// fused 4-bit kernels ("before": nf4_linear_forward_scalar / _backward_input_scalar) and the fast
// ones ("after": nf4_linear_forward / nf4_linear_backward_input). ratio = f32 time / 4-bit time
// (1.0: as fast as f32; > 1: faster).
//
// Decoding (M = 1): the same products with one row, first one weight alone (hot in cache: compute
// bound), then a decode step's worth of weights streamed from memory: --layers copies of
// SmolLM2's seven projections (30 layers: 106 M weights, 425 MB in f32, 55 MB in 4 bits), each
// multiplied once per step, as a forward pass does. Reported as tokens/s and GB/s of weight read,
// beside the machine's copy bandwidth (a 256 MiB parallel memcpy, read + write, measured in the
// same run right after the step, as ../shared/bench/torch_gpt2_baseline.py's machine section).
//
//   --decode-only   skip the training shapes
//   --json FILE     the decoding numbers as JSON (tools/bench_nf4_vs_bnb.py reads them and puts
//                   bitsandbytes' CPU path beside them)
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <galvani/galvani.hpp>
#include <galvani/quant/nf4_matmul.hpp>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"

using namespace galvani;
using namespace galvani::quant;

namespace {

// Median seconds of each function, run in turn (f32, 4-bit, f32, 4-bit, …) so that a change in
// the machine's load hits all of them alike; the first round warms up (and grows scratch buffers).
std::vector<double> interleaved_medians(int reps, const std::vector<std::function<void()>>& fs) {
  std::vector<std::vector<double>> ts(fs.size());
  for (int r = 0; r <= reps; ++r)
    for (size_t i = 0; i < fs.size(); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fs[i]();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r) ts[i].push_back(s);
    }
  std::vector<double> med;
  for (auto& t : ts) med.push_back(bench::median(t));
  return med;
}

// One weight in both forms: f32 W (N, K) and its NF4 (double-quantized, as QLoRA loads it) codes.
struct Layer {
  int64_t N, K;
  Tensor W;       // f32 (N, K)
  Tensor packed;  // u8
  Tensor absmax;  // f32, un-nested
};
Layer make_layer(int64_t N, int64_t K, Generator& g) {
  Layer l{N, K, rand_normal({N, K}, 0, 0.02, g), {}, {}};
  Quantize4bitOptions opt;
  opt.double_quant = true;
  Quantized4bit q = quantize_4bit(l.W, opt);
  l.packed = q.packed;
  l.absmax = Tensor::from_vector(q.state.absmax_f32(), {q.state.nblocks()});
  return l;
}
Layer copy_of(const Layer& l) { return {l.N, l.K, l.W.clone(), l.packed.clone(), l.absmax.clone()}; }

void f32_forward(const Layer& l, const float* x, float* y, int64_t M) {  // y = x · Wᵀ, as linear
  gemm<float>(M, l.N, l.K, x, l.K, 1, l.W.data<float>(), 1, l.K, y, l.N);
}
void f32_backward(const Layer& l, const float* dy, float* dx, int64_t M) {  // dx = dy · W
  gemm<float>(M, l.K, l.N, dy, l.N, 1, l.W.data<float>(), l.K, 1, dx, l.K);
}
void nf4_forward(const Layer& l, const float* x, float* y, int64_t M, bool before) {
  (before ? nf4_linear_forward_scalar<float> : nf4_linear_forward<float>)(
      x, l.packed.data<uint8_t>(), l.absmax.data<float>(), QuantType::nf4, 64, nullptr, y, M, l.N, l.K);
}
void nf4_backward(const Layer& l, const float* dy, float* dx, int64_t M, bool before) {
  (before ? nf4_linear_backward_input_scalar<float> : nf4_linear_backward_input<float>)(
      dy, l.packed.data<uint8_t>(), l.absmax.data<float>(), QuantType::nf4, 64, dx, M, l.N, l.K);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time the NF4 4-bit linear against the f32 one on training and decoding shapes"};
  int threads = 2, reps = 5, decode_reps = 20, layers = 30;
  int64_t tokens = 512;
  bool skip_before = false, decode_only = false;
  std::string json_path;
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str();
  app.add_option("--tokens", tokens, "rows of x in the training shapes (batch × sequence)")->capture_default_str();
  app.add_option("--reps", reps, "timed repetitions of the training shapes (median reported)")->capture_default_str();
  app.add_option("--decode-reps", decode_reps, "timed repetitions of the decoding cases")->capture_default_str();
  app.add_option("--layers", layers, "SmolLM2 layers streamed in the decode-step case")->capture_default_str();
  app.add_flag("--skip-before", skip_before, "do not time the scalar (before) kernels on the training shapes");
  app.add_flag("--decode-only", decode_only, "time the decoding cases only (M = 1), not the training shapes");
  app.add_option("--json", json_path, "also write the decoding numbers to this JSON file");
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  keep_freed_memory();
  Generator g(0);
  std::printf("bench_nf4: %d threads, %lld tokens, median of %d (decode %d)\n", threads, (long long)tokens, reps,
              decode_reps);

  struct Shape2 { const char* name; int64_t N, K; };
  const Shape2 shapes[] = {{"smollm2 q/o_proj  576x576", 576, 576},   {"smollm2 gate/up   1536x576", 1536, 576},
                           {"smollm2 down_proj 576x1536", 576, 1536}, {"gpt2 c_attn       2304x768", 2304, 768},
                           {"gpt2 c_fc         3072x768", 3072, 768}, {"gpt2 c_proj       768x3072", 768, 3072}};
  std::vector<Layer> ls;
  for (const Shape2& s : shapes) ls.push_back(make_layer(s.N, s.K, g));

  nlohmann::json out = {{"threads", threads},
                        {"decode_reps", decode_reps},
                        {"nf4_kernels_level", nf4_kernels_level()},
                        {"one_weight", nlohmann::json::array()}};

  if (!decode_only) {
    std::printf("\ntraining shapes, M = %lld: ms (GFLOP/s); ratio = f32 ms / nf4 ms\n", (long long)tokens);
    std::printf("%-27s %-5s %16s %16s %16s %7s %7s\n", "W (out x in)", "pass", "f32", "nf4 before", "nf4 after",
                "before", "after");
  }
  for (size_t i = 0; i < ls.size() && !decode_only; ++i) {
    const Layer& l = ls[i];
    const int64_t M = tokens;
    Tensor x = rand_normal({M, l.K}, 0, 1, g), dy = rand_normal({M, l.N}, 0, 1, g);
    Tensor y = Tensor::empty({M, l.N}, DType::f32), dx = Tensor::empty({M, l.K}, DType::f32);
    const double gf = 2.0 * double(M * l.N * l.K) / 1e9;
    for (int pass = 0; pass < 2; ++pass) {
      const bool fwd = pass == 0;
      auto f32 = [&] {
        fwd ? f32_forward(l, x.data<float>(), y.data<float>(), M) : f32_backward(l, dy.data<float>(), dx.data<float>(), M);
      };
      auto nf4 = [&](bool before) {
        return [&, before] {
          fwd ? nf4_forward(l, x.data<float>(), y.data<float>(), M, before)
              : nf4_backward(l, dy.data<float>(), dx.data<float>(), M, before);
        };
      };
      const std::vector<double> t = interleaved_medians(reps, {f32, nf4(false)});
      const double t32 = t[0], t1 = t[1];
      // The scalar kernel is 5-30x slower: fewer repetitions, timed on its own.
      const double t0 = skip_before ? 0.0 : interleaved_medians(std::max(1, reps / 2), {nf4(true)})[0];
      std::printf("%-27s %-5s %7.2f (%6.1f) %7.2f (%6.1f) %7.2f (%6.1f) %7.2f %7.2f\n", shapes[i].name,
                  fwd ? "fwd" : "dx", t32 * 1e3, gf / t32, t0 * 1e3, t0 > 0 ? gf / t0 : 0.0, t1 * 1e3, gf / t1,
                  t0 > 0 ? t32 / t0 : 0.0, t32 / t1);
    }
  }

  std::printf("\ndecoding, M = 1, one weight (hot in cache): us; ratio = f32 us / nf4 us\n");
  std::printf("%-27s %10s %10s %10s %7s %7s\n", "W (out x in)", "f32", "nf4 before", "nf4 after", "before", "after");
  for (size_t i = 0; i < ls.size(); ++i) {
    const Layer& l = ls[i];
    Tensor x = rand_normal({1, l.K}, 0, 1, g), y = Tensor::empty({1, l.N}, DType::f32);
    const std::vector<double> t =
        interleaved_medians(decode_reps, {[&] { f32_forward(l, x.data<float>(), y.data<float>(), 1); },
                                          [&] { nf4_forward(l, x.data<float>(), y.data<float>(), 1, true); },
                                          [&] { nf4_forward(l, x.data<float>(), y.data<float>(), 1, false); }});
    const double t32 = t[0], t0 = t[1], t1 = t[2];
    std::printf("%-27s %10.1f %10.1f %10.1f %7.2f %7.2f\n", shapes[i].name, t32 * 1e6, t0 * 1e6, t1 * 1e6, t32 / t0,
                t32 / t1);
    out["one_weight"].push_back({{"name", shapes[i].name}, {"N", l.N}, {"K", l.K}, {"f32_us", t32 * 1e6},
                                 {"nf4_before_us", t0 * 1e6}, {"nf4_us", t1 * 1e6}});
  }

  // A decode step's weights: `layers` × SmolLM2's q, k, v, o, gate, up, down, every copy distinct.
  {
    Layer q = make_layer(576, 576, g), kv = make_layer(192, 576, g), up = make_layer(1536, 576, g),
          down = make_layer(576, 1536, g);
    std::vector<Layer> model;
    for (int L = 0; L < layers; ++L)
      for (const Layer* p : {&q, &kv, &kv, &q, &up, &up, &down}) model.push_back(copy_of(*p));
    double w32 = 0, w4 = 0;
    for (const Layer& l : model) {
      w32 += double(l.W.numel()) * 4;
      w4 += double(l.packed.numel() + l.absmax.numel() * 4);
    }
    Tensor x = rand_normal({1, 1536}, 0, 1, g), y = Tensor::empty({1, 1536}, DType::f32);
    auto step = [&](int which) {
      for (const Layer& l : model)
        which == 0 ? f32_forward(l, x.data<float>(), y.data<float>(), 1)
                   : nf4_forward(l, x.data<float>(), y.data<float>(), 1, which == 1);
    };
    const int dr = std::max(3, decode_reps / 4);
    const std::vector<double> t = interleaved_medians(dr, {[&] { step(0); }, [&] { step(1); }, [&] { step(2); }});
    const double t32 = t[0], t0 = t[1], t1 = t[2];
    std::printf("\ndecode step, %d layers x 7 projections (%.0f MB f32, %.1f MB nf4 codes + absmax), M = 1:\n", layers,
                w32 / 1e6, w4 / 1e6);
    std::printf("  f32        %8.2f ms  %7.1f steps/s  %6.1f GB/s of weight\n", t32 * 1e3, 1 / t32, w32 / t32 / 1e9);
    std::printf("  nf4 before %8.2f ms  %7.1f steps/s  %6.1f GB/s   ratio %.2f\n", t0 * 1e3, 1 / t0, w4 / t0 / 1e9, t32 / t0);
    std::printf("  nf4 after  %8.2f ms  %7.1f steps/s  %6.1f GB/s   ratio %.2f\n", t1 * 1e3, 1 / t1, w4 / t1 / 1e9, t32 / t1);
    // The ceiling: the machine's copy bandwidth, measured now (after the step: same load, same threads).
    const double copy = bench::median(bench::copy_bandwidth_gbps(std::max(5, dr)));
    std::printf("  copy bandwidth (256 MiB memcpy, read + write) %.1f GB/s: nf4 reads at %.0f%% of it, f32 at %.0f%%\n",
                copy, 100 * w4 / t1 / 1e9 / copy, 100 * w32 / t32 / 1e9 / copy);
    out["decode_step"] = {{"layers", layers},       {"f32_bytes", w32},     {"nf4_bytes", w4},
                          {"f32_ms", t32 * 1e3},    {"nf4_before_ms", t0 * 1e3}, {"nf4_ms", t1 * 1e3},
                          {"copy_gbps", copy}};
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << out.dump(1) << "\n";
    GALVANI_CHECK(f.good(), "bench_nf4: could not write --json ", json_path);
  }
}
