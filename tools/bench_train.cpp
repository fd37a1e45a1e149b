// bench_train — galvani's CPU speed on training, evaluation and generation, measured the way
// ../shared/bench/torch_gpt2_baseline.py measures PyTorch (GPT-2 shapes) and
// ../shared/bench/hf_baseline.py full measures transformers (GPT-2 and Llama shapes), so the
// JSON lines can be divided key by key.
//
//   build-bench/bench_train --config distilgpt2 --threads 2 [--quick] [--wait-idle 600]
//   build-bench/bench_train --config tiny --sections train --seq-lens 256
//   build-bench/bench_train --config smollm2 --threads 2 --quick     # vs hf_baseline.py full --config smollm2
//   build-bench/bench_train --config distilgpt2 --quick --sections train --seq-lens 256 --profile  # per-op table
//
// Configs: distilgpt2 and tiny (GPT2LMHeadModel, the baselines' GPT-2 shapes); smollm2
// (LlamaForCausalLM with SmolLM2-135M's shape: 30 layers, d 576, GQA 9/3 heads, SwiGLU 1536,
// vocab 49,152, tied head) and tiny-llama (the same family at 2 layers, d 128, GQA 4/2 heads).
// All random init, no dropout.
//
// Sections (the baseline's, same seeds policy, same warm-up / median method):
//   train     forward + causal_lm_loss + backward + AdamW(lr 2e-5, wd 0).step() +
//             zero_grad (set to none); batch 2, T = 128 and 256, random token ids
//   eval      forward + loss under NoGradGuard, batch 1, T = 256
//   generate  greedy decoding of 100 new tokens from an 8-token prompt with a KV cache,
//             batch 1; the time includes the prompt pass
//   generate-bf16  (not by default) the same with the weights stored in bf16 and computed in f32
//             (half the bytes streamed per token); with generate, "speedup_vs_f32" is the ratio
//   machine   (last) galvani GEMM 2048³, a 256 MiB copy, first touch of fresh pages
// Token ids are random (a seeded counter-based generator, seed + T per training length
// as the baseline does); they cannot be the same draws as torch.randint, so losses
// agree only statistically (≈ ln 50257 = 10.8 at init).
//
// Progress goes to stderr; stdout gets one JSON line whose keys are the baseline's
// wherever the quantity is the same (tokens_per_s, step_ms, forward_loss_ms_median, …).
#include <CLI/CLI.hpp>
#include <omp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <galvani/galvani.hpp>
#include "../examples/cli_checks.hpp"
#include "bench_common.hpp"
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace galvani;
using json = nlohmann::json;

namespace {

// ------------------------------------------------------------------ small helpers

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void log(const char* fmt, auto... args) {
  std::time_t t = std::time(nullptr);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s] ", stamp);
  if constexpr (sizeof...(args) == 0)
    std::fputs(fmt, stderr);
  else
    std::fprintf(stderr, fmt, args...);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);  // statistics.median
}

json summarize(const std::vector<double>& v) {
  return {{"median", median(v)}, {"min", *std::min_element(v.begin(), v.end())},
          {"max", *std::max_element(v.begin(), v.end())}, {"n", v.size()}};
}

rusage usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r;
}
long minor_faults() { return usage().ru_minflt; }
double max_rss_mb() { return double(usage().ru_maxrss) / 1024.0; }  // Linux: KiB
double rss_mb() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1 << 20);
}
double loadavg_1m() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// CPU time that *other* processes burned while a section ran, as a share of the
// machine's cores (the baseline's foreign_cpu_load): busy jiffies from /proc/stat
// minus this process's own user + system time. Above ~0.05 the timing is contaminated.
struct ForeignLoad {
  double hz = double(sysconf(_SC_CLK_TCK)), ncpu = double(std::thread::hardware_concurrency());
  double t0, b0, o0;
  static double busy() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    f >> cpu;
    std::vector<double> v;
    for (int i = 0; i < 8; ++i) {
      double x = 0;
      f >> x;
      v.push_back(x);
    }
    double sum = 0;
    for (double x : v) sum += x;
    return sum - v[3] - v[4];  // minus idle and iowait
  }
  static double own() {
    rusage r = usage();
    return double(r.ru_utime.tv_sec) + 1e-6 * double(r.ru_utime.tv_usec) + double(r.ru_stime.tv_sec) +
           1e-6 * double(r.ru_stime.tv_usec);
  }
  ForeignLoad() { start(); }
  void start() { t0 = now_s(), b0 = busy(), o0 = own(); }
  double fraction() const {
    const double wall = now_s() - t0;
    const double foreign = (busy() - b0) / hz - (own() - o0);
    return wall > 0 ? std::max(0.0, foreign) / (wall * ncpu) : 0.0;
  }
};

// Wait (up to max_s) until other processes leave the CPUs idle: the baseline's
// wait_for_idle (foreign share < 0.10 over 2 s). The 1-minute load average is
// recorded, not waited on, because it counts this process's own previous section.
double wait_for_idle(double max_s, double threshold = 0.10, double window_s = 2.0) {
  const double deadline = now_s() + max_s;
  for (;;) {
    ForeignLoad probe;
    std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
    const double frac = probe.fraction();
    if (frac < threshold) return frac;
    if (now_s() > deadline) {
      log("WARNING: machine still busy (%.0f%% of its cores used by other processes); timing anyway", 100 * frac);
      return frac;
    }
    log("  waiting for the machine to go idle (%.0f%% busy with other processes, load %.2f) ...", 100 * frac,
        loadavg_1m());
  }
}

// ------------------------------------------------------------------ configs and FLOPs

// One benchmark shape: the model's family, its config, and what the FLOP counts need. The GPT-2
// shapes are torch_gpt2_baseline.py's and hf_baseline.py's `cfgs`, smollm2 is hf_baseline.py's
// SMOLLM2; tiny-llama is galvani's own (no baseline runs it).
struct BenchShape {
  std::string name;
  std::optional<GPT2Config> gpt2;
  std::optional<MistralConfig> llama;

  int64_t n_layer() const { return gpt2 ? gpt2->n_layer : llama->num_hidden_layers; }
  int64_t vocab() const { return gpt2 ? gpt2->vocab_size : llama->vocab_size; }
  int64_t positions() const { return gpt2 ? gpt2->n_positions : llama->max_position_embeddings; }
  // The width of the attention products (query heads × head_dim): the T × T work per token.
  int64_t attn_width() const { return gpt2 ? gpt2->n_embd : llama->num_attention_heads * llama->head_dim(); }
  // Weights that take part in a matmul per token. GPT-2: 12 L d² in the blocks + d V in lm_head.
  // Llama: per layer q and o (d × Hq·D each), k and v (d × Hkv·D each), gate, up, down (d × I
  // each); + d V in lm_head (tied or not, the head is one product).
  double matmul_params() const {
    if (gpt2) return 12.0 * double(n_layer()) * double(gpt2->n_embd * gpt2->n_embd) + double(gpt2->n_embd * vocab());
    const double d = double(llama->hidden_size), D = double(llama->head_dim());
    const double attn = 2 * d * double(llama->num_attention_heads) * D + 2 * d * double(llama->num_key_value_heads) * D;
    return double(n_layer()) * (attn + 3 * d * double(llama->intermediate_size)) + d * double(vocab());
  }
  json config_json() const {
    if (gpt2)
      return {{"model_type", "gpt2"}, {"n_layer", gpt2->n_layer}, {"n_embd", gpt2->n_embd}, {"n_head", gpt2->n_head},
              {"vocab_size", gpt2->vocab_size}, {"n_positions", gpt2->n_positions}};
    return {{"model_type", "llama"},
            {"hidden_size", llama->hidden_size},
            {"intermediate_size", llama->intermediate_size},
            {"num_hidden_layers", llama->num_hidden_layers},
            {"num_attention_heads", llama->num_attention_heads},
            {"num_key_value_heads", llama->num_key_value_heads},
            {"vocab_size", llama->vocab_size},
            {"max_position_embeddings", llama->max_position_embeddings},
            {"tie_word_embeddings", llama->tie_word_embeddings}};
  }
  // Random init from `seed`; with dtype bf16 the same draws rounded to bf16 (weights stored in 2 bytes,
  // computed in f32: ops/matmul.hpp's weight_only_16).
  std::unique_ptr<CausalLM> build(uint64_t seed, DType dtype = DType::f32) const {
    BuildOptions opts{seed};
    opts.dtype = dtype;
    if (gpt2) return std::make_unique<GPT2LMHeadModel>(*gpt2, opts);
    return std::make_unique<MistralForCausalLM>(*llama, opts);
  }
};

BenchShape make_shape(const std::string& name) {
  BenchShape s{name, {}, {}};
  if (name == "distilgpt2" || name == "tiny") {
    GPT2Config c;
    if (name == "distilgpt2")
      c.n_layer = 6, c.n_embd = 768, c.n_head = 12, c.vocab_size = 50257, c.n_positions = 1024;
    else
      c.n_layer = 2, c.n_embd = 128, c.n_head = 4, c.vocab_size = 50257, c.n_positions = 256;
    c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.0;  // the baseline has no dropout
    s.gpt2 = c;
    return s;
  }
  // smollm2: SmolLM2-135M (LlamaForCausalLM), hf_baseline.py's SMOLLM2; tiny-llama: the same
  // family at the tiny GPT-2's size (2 layers, d 128), with GQA and a tied 49,152-row head.
  MistralConfig c = MistralConfig::defaults("llama");
  if (name == "smollm2") {
    c.hidden_size = 576, c.intermediate_size = 1536, c.num_hidden_layers = 30;
    c.num_attention_heads = 9, c.num_key_value_heads = 3, c.max_position_embeddings = 2048;
  } else {
    c.hidden_size = 128, c.intermediate_size = 384, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 256;
  }
  c.vocab_size = 49152, c.rms_norm_eps = 1e-5, c.rope_theta = 100000.0, c.tie_word_embeddings = true;
  c.validate("bench_train --config " + name);
  s.llama = c;
  return s;
}

// The baseline's counting: the attention square is counted whole (T × T).
double fwd_flops_per_token(const BenchShape& c, int64_t T) {
  return 2 * c.matmul_params() + 4.0 * double(c.n_layer() * T * c.attn_width());
}
double train_flops_per_token(const BenchShape& c, int64_t T) { return 3 * fwd_flops_per_token(c, T); }

// Uniform ids in [0, V) from a seeded counter-based generator.
Tensor random_ids(Generator& g, int64_t B, int64_t T, int64_t V) {
  std::vector<int64_t> ids(size_t(B * T));
  for (int64_t& id : ids) id = int64_t(g.next_u64() % uint64_t(V));
  return Tensor::from_vector(ids, {B, T});
}

// ------------------------------------------------------------------ profiling

// --profile: which sections record a per-op profile of their timed repeats, how many rows the
// table printed to stderr shows, and where Chrome traces go.
struct ProfileOptions {
  bool on = false;
  int rows = 30;
  std::string trace;  // "" = none; else a path, ".<section>-T<seq>" inserted before its extension
};

// The profile of one section: the table on stderr, the rows (sorted by self time) for the JSON
// line, the trace file if asked.
json finish_profile(profiler::Profile& prof, const ProfileOptions& po, const std::string& what, int repeats) {
  prof.stop();
  log("  per-op profile of %s (%d timed repeat%s; times summed over them, so divide by %d for one):", what.c_str(),
      repeats, repeats == 1 ? "" : "s", repeats);
  std::fputs(prof.table("self_cpu_time_total", po.rows).c_str(), stderr);
  json rows = json::array();
  std::vector<profiler::FunctionEventAvg> avg = prof.key_averages();
  std::stable_sort(avg.begin(), avg.end(),
                   [](const auto& a, const auto& b) { return a.self_cpu_time_total > b.self_cpu_time_total; });
  for (const auto& a : avg)
    rows.push_back({{"name", a.key},
                    {"calls_per_repeat", double(a.count) / repeats},
                    {"self_ms_per_repeat", a.self_cpu_time_total / 1e3 / repeats},
                    {"total_ms_per_repeat", a.cpu_time_total / 1e3 / repeats}});
  if (!po.trace.empty()) {
    std::string path = po.trace;
    const size_t slash = path.find_last_of('/'), dot = path.find_last_of('.');
    const size_t at = (dot != std::string::npos && (slash == std::string::npos || dot > slash)) ? dot : path.size();
    std::string tag = what;
    std::replace(tag.begin(), tag.end(), ' ', '-');
    tag.erase(std::remove(tag.begin(), tag.end(), '='), tag.end());
    path.insert(at, "." + tag);
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    prof.export_chrome_trace(path);
    log("  trace written to %s (open in chrome://tracing or https://ui.perfetto.dev)", path.c_str());
  }
  return rows;
}

// ------------------------------------------------------------------ sections

json bench_train(CausalLM& model, const BenchShape& cfg, int64_t batch, int64_t seq, int warmup, int steps,
                 uint64_t seed, const ProfileOptions& po) {
  model.train();
  Generator gen(seed + uint64_t(seq));
  std::vector<Tensor> batches;
  for (int i = 0; i < warmup + steps; ++i) batches.push_back(random_ids(gen, batch, seq, cfg.vocab()));
  AdamWOptions o;
  o.lr = 2e-5, o.weight_decay = 0.0;
  AdamW opt(model.parameters(), o);
  std::vector<double> step_s, fwd_s, bwd_s, opt_s, losses;
  long faults = 0;
  std::optional<profiler::Profile> prof;
  for (int i = 0; i < warmup + steps; ++i) {
    const Tensor& ids = batches[size_t(i)];
    if (po.on && i == warmup) prof.emplace();  // the timed steps only
    const long f0 = minor_faults();
    const double t0 = now_s();
    Tensor loss;
    {
      Tensor logits;
      {
        profiler::RecordFunction scope("forward");
        logits = model.forward(ids);
      }
      profiler::RecordFunction scope("loss");
      loss = causal_lm_loss(logits, ids);
    }
    const double t1 = now_s();
    {
      profiler::RecordFunction scope("backward");
      loss.backward();
    }
    const double t2 = now_s();
    {
      profiler::RecordFunction scope("optimizer.step");
      opt.step();
    }
    {
      profiler::RecordFunction scope("optimizer.zero_grad");
      opt.zero_grad();
    }
    const double t3 = now_s();
    losses.push_back(loss.item<double>());
    log("  train b=%lld T=%lld step %d/%d (%s) %.3fs loss %.4f", (long long)batch, (long long)seq, i + 1,
        warmup + steps, i < warmup ? "warm-up" : "timed", t3 - t0, losses.back());
    if (i >= warmup) {
      faults += minor_faults() - f0;
      step_s.push_back(t3 - t0), fwd_s.push_back(t1 - t0), bwd_s.push_back(t2 - t1), opt_s.push_back(t3 - t2);
    }
  }
  json profile;
  if (prof)
    profile = finish_profile(*prof, po, "train b=" + std::to_string(batch) + " T=" + std::to_string(seq), steps);
  const double tokens = double(batch * seq), med = median(step_s), flops = train_flops_per_token(cfg, seq);
  log("  train b=%lld T=%lld: %.1f tokens/s (median step %.1f ms: forward + loss %.1f, backward %.1f, AdamW %.1f)",
      (long long)batch, (long long)seq, tokens / med, med * 1e3, median(fwd_s) * 1e3, median(bwd_s) * 1e3,
      median(opt_s) * 1e3);
  std::vector<double> step_ms;
  for (double s : step_s) step_ms.push_back(s * 1e3);
  json out = {{"batch", batch},
          {"seq", seq},
          {"tokens_per_step", batch * seq},
          {"warmup", warmup},
          {"tokens_per_s", tokens / med},
          {"step_ms", summarize(step_ms)},
          {"forward_loss_ms_median", median(fwd_s) * 1e3},
          {"backward_ms_median", median(bwd_s) * 1e3},
          {"adamw_step_zero_grad_ms_median", median(opt_s) * 1e3},
          {"train_flops_per_token", flops},
          {"achieved_gflops", flops * tokens / med / 1e9},
          {"loss_first", losses.front()},
          {"loss_last", losses.back()},
          {"minor_page_faults_per_step", double(faults) / double(step_s.size())},
          {"peak_rss_mb_so_far", max_rss_mb()}};
  if (prof) out["profile"] = profile;
  return out;
}

json bench_eval(CausalLM& model, const BenchShape& cfg, int64_t batch, int64_t seq, int warmup, int reps,
                uint64_t seed, const ProfileOptions& po) {
  NoGradGuard no_grad;
  model.eval();
  Generator gen(seed + 1000 + uint64_t(seq));
  Tensor ids = random_ids(gen, batch, seq, cfg.vocab());
  std::vector<double> times;
  double loss = 0;
  long faults = 0;
  std::optional<profiler::Profile> prof;
  for (int i = 0; i < warmup + reps; ++i) {
    if (po.on && i == warmup) prof.emplace();
    const long f0 = minor_faults();
    const double t = now_s();
    Tensor logits;
    {
      profiler::RecordFunction scope("forward");
      logits = model.forward(ids);
    }
    Tensor l;
    {
      profiler::RecordFunction scope("loss");
      l = causal_lm_loss(logits, ids);
    }
    const double dt = now_s() - t;
    loss = l.item<double>();
    if (i >= warmup) times.push_back(dt), faults += minor_faults() - f0;
  }
  json profile;
  if (prof) profile = finish_profile(*prof, po, "eval b=" + std::to_string(batch) + " T=" + std::to_string(seq), reps);
  const double med = median(times), flops = fwd_flops_per_token(cfg, seq);
  log("  eval b=%lld T=%lld: %.1f tokens/s (median %.1f ms), loss %.4f", (long long)batch, (long long)seq,
      double(batch * seq) / med, med * 1e3, loss);
  std::vector<double> ms;
  for (double s : times) ms.push_back(s * 1e3);
  json out = {{"batch", batch},
          {"seq", seq},
          {"tokens_per_s", double(batch * seq) / med},
          {"ms", summarize(ms)},
          {"loss", loss},
          {"perplexity", std::exp(loss)},
          {"fwd_flops_per_token", flops},
          {"achieved_gflops", flops * double(batch * seq) / med / 1e9},
          {"minor_page_faults_per_repeat", double(faults) / double(times.size())}};
  if (prof) out["profile"] = profile;
  return out;
}

// weight_itemsize: bytes per matmul weight (4 for f32, 2 for a model stored in bf16).
json bench_generate(CausalLM& model, const BenchShape& cfg, int64_t prompt_len, int64_t n_new, int warmup,
                    int reps, uint64_t seed, int weight_itemsize = 4) {
  model.eval();
  Generator gen(seed + 2000);
  Tensor prompt_t = random_ids(gen, 1, prompt_len, cfg.vocab());
  const std::vector<int64_t> prompt = prompt_t.to_vector<int64_t>();
  GenerationOptions opt;
  opt.max_new_tokens = n_new;
  opt.stop_at_eos = false;  // the baseline always decodes n_new tokens
  std::vector<double> times, prefill;
  std::vector<int64_t> out;
  long faults = 0;
  for (int i = 0; i < warmup + reps; ++i) {
    const long f0 = minor_faults();
    double t = now_s();
    out = generate(model, prompt, opt);
    const double dt = now_s() - t;
    const long df = minor_faults() - f0;
    double dp;
    {
      NoGradGuard no_grad;
      t = now_s();
      Tensor logits = model.forward(prompt_t);
      dp = now_s() - t;
    }
    if (i >= warmup) times.push_back(dt), prefill.push_back(dp), faults += df;
  }
  GALVANI_CHECK(int64_t(out.size()) == n_new, "bench_train: generate returned ", out.size(), " tokens, not ", n_new);
  const double med = median(times), weight_bytes = weight_itemsize * cfg.matmul_params();
  log("  generate %lld tokens: %.3fs median (%.1f tok/s)", (long long)n_new, med, double(n_new) / med);
  std::vector<double> ms;
  for (double s : times) ms.push_back(s * 1e3);
  return {{"batch", 1},
          {"weights_dtype", weight_itemsize == 2 ? "bf16" : "f32"},
          {"prompt_tokens", prompt_len},
          {"new_tokens", n_new},
          {"kv_cache", true},
          {"tokens_per_s", double(n_new) / med},
          {"total_ms", summarize(ms)},
          {"ms_per_token", med * 1e3 / double(n_new)},
          {"prompt_pass_ms_median", median(prefill) * 1e3},
          {"weight_bytes_per_token", weight_bytes},
          {"weight_stream_gbps", weight_bytes * double(n_new) / med / 1e9},
          {"minor_page_faults_per_repeat", double(faults) / double(times.size())},
          {"first_ids", std::vector<int64_t>(out.begin(), out.begin() + std::min<int64_t>(8, n_new))}};
}

// galvani GEMM 2048³, a parallel copy of 256 MiB (read + write) and the first touch of
// fresh anonymous pages: the same three ceilings the baseline's machine section reports.
json bench_machine(int reps, int64_t n = 2048, int64_t copy_mib = 256) {
  Generator g(0);
  std::vector<double> gf, bw, fresh;
  {
    Tensor a = rand_normal({n, n}, 0, 1, g), b = rand_normal({n, n}, 0, 1, g);
    for (int i = 0; i < 2; ++i) detail::mm_kernel(a, b, "bench");
    for (int i = 0; i < reps; ++i) {
      const double t = now_s();
      Tensor c = detail::mm_kernel(a, b, "bench");
      gf.push_back(2.0 * double(n * n * n) / (now_s() - t) / 1e9);
    }
  }
  const int64_t numel = copy_mib * (1 << 20) / 4;
  bw = bench::copy_bandwidth_gbps(reps, copy_mib);
  for (int i = 0; i < 3; ++i) {
    const size_t bytes = size_t(copy_mib) << 20;
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    GALVANI_CHECK(m != MAP_FAILED, "bench_train: mmap of ", bytes, " bytes failed");
    float* p = static_cast<float*>(m);
    const double t = now_s();
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < numel; ++j) p[j] = 1.0f;
    fresh.push_back(double(bytes) / (now_s() - t) / 1e9);
    munmap(m, bytes);
  }
  return {{"sgemm_n", n},
          {"sgemm_gflops", summarize(gf)},
          {"copy_mib", copy_mib},
          {"copy_gbps", summarize(bw)},
          {"first_touch_fill_gbps", summarize(fresh)}};
}

}  // namespace

int run(int argc, char** argv) {
  keep_freed_memory();  // the baseline runs under GLIBC_TUNABLES=glibc.malloc.mmap_max=0:…; this is the same
  CLI::App app{"galvani CPU benchmark, GPT-2 and Llama shapes: train / eval / generate, measured as "
               "../shared/bench/torch_gpt2_baseline.py and hf_baseline.py full measure PyTorch and transformers"};
  std::string config = "distilgpt2", seq_lens_s = "128,256", sections_s = "train,eval,generate";
  int threads = int(std::thread::hardware_concurrency()), steps = -1, warmup = -1;
  bool quick = false, no_machine = false;
  uint64_t seed = 0;
  int64_t train_batch = 2, eval_seq = 256, gen_prompt = 8, gen_tokens = 100;
  double wait_idle = 0;
  ProfileOptions po;
  app.add_option("--config", config, "model configuration")
      ->check(CLI::IsMember({"distilgpt2", "tiny", "smollm2", "tiny-llama"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "omp_set_num_threads (default: all cores)")
      ->check(cli::kPositive)
      ->capture_default_str();
  app.add_option("--steps", steps, "timed training steps per sequence length (default 10, --quick 3)")
      ->check(cli::kPositive);
  app.add_option("--warmup", warmup, "untimed warm-up steps/repeats (default 2, --quick 1)")
      ->check(cli::kNonNegative);
  app.add_flag("--quick", quick, "short run: 1 warm-up, 3 steps, 3 eval and 2 generation repeats");
  app.add_option("--seed", seed, "model init and token-id seed")->capture_default_str();
  app.add_option("--train-batch", train_batch, "training batch size")->check(cli::kPositive)->capture_default_str();
  app.add_option("--seq-lens", seq_lens_s, "comma-separated training sequence lengths")->capture_default_str();
  app.add_option("--eval-seq", eval_seq, "evaluation sequence length (at least 2: the loss predicts token t+1)")
      ->check(cli::number_check([](double v) { return v >= 2 && v <= double(int64_t(1) << 20); }, "a length of at least 2 tokens", ">= 2"))
      ->capture_default_str();
  app.add_option("--gen-prompt", gen_prompt, "prompt length for generation")->check(cli::kPositive)->capture_default_str();
  app.add_option("--gen-tokens", gen_tokens, "new tokens to generate")->check(cli::kPositive)->capture_default_str();
  app.add_option("--sections", sections_s,
                 "comma-separated subset of train,eval,generate,generate-bf16 (generate-bf16: the same model with its "
                 "weights stored in bf16 and computed in f32, as load_causal_lm(dir, DType::bf16) builds it)")
      ->capture_default_str();
  app.add_flag("--no-machine", no_machine, "skip the GEMM / copy / first-touch measurements");
  app.add_option("--wait-idle", wait_idle,
                 "before each section, wait up to SECONDS for other processes to leave the CPUs idle");
  app.add_flag("--profile", po.on,
               "record a per-op profile (core/profiler.hpp) of the timed train and eval repeats: a table on stderr "
               "(torch.profiler's key_averages().table()) and a \"profile\" array in the JSON; recording costs a "
               "little time, so compare speeds from runs without it");
  app.add_option("--profile-rows", po.rows, "rows of the --profile table (by self time)")->capture_default_str();
  app.add_option("--profile-trace", po.trace,
                 "with --profile, also write a Chrome trace per section to FILE (the section inserted before the "
                 "extension: trace.train-b2-T128.json)");
  CLI11_PARSE(app, argc, argv);
  if (!po.trace.empty() && !po.on) {
    std::fprintf(stderr, "--profile-trace needs --profile\n");
    return 2;
  }

  if (warmup < 0) warmup = quick ? 1 : 2;
  if (steps < 0) steps = quick ? 3 : 10;
  const int eval_reps = quick ? 3 : 10, gen_reps = quick ? 2 : 5, machine_reps = quick ? 5 : 20;
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');)
      if (!x.empty()) out.push_back(x);
    return out;
  };
  std::vector<int64_t> seq_lens;
  for (auto& s : split(seq_lens_s)) {
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < 2) {
      std::fprintf(stderr, "--seq-lens: '%s' is not a length of at least 2 tokens (e.g. --seq-lens 128,256)\n",
                   s.c_str());
      return 2;
    }
    seq_lens.push_back(v);
  }
  if (seq_lens.empty()) {
    std::fprintf(stderr, "--seq-lens: no length given (e.g. --seq-lens 128,256)\n");
    return 2;
  }
  bool do_train = false, do_eval = false, do_gen = false, do_gen16 = false;
  for (auto& s : split(sections_s)) {
    if (s == "train") do_train = true;
    else if (s == "eval") do_eval = true;
    else if (s == "generate") do_gen = true;
    else if (s == "generate-bf16") do_gen16 = true;
    else {
      std::fprintf(stderr, "--sections: unknown section '%s' (train, eval, generate, generate-bf16)\n", s.c_str());
      return 2;
    }
  }
  const BenchShape cfg = make_shape(config);
  const char* positions_field = cfg.gpt2 ? "n_positions" : "max_position_embeddings";
  for (int64_t s : seq_lens)
    if (s > cfg.positions())
      return std::fprintf(stderr, "--seq-lens: %lld is longer than --config %s's %s (%lld)\n", (long long)s,
                          config.c_str(), positions_field, (long long)cfg.positions()),
             2;
  if (eval_seq > cfg.positions())
    return std::fprintf(stderr, "--eval-seq: %lld is longer than --config %s's %s (%lld)\n", (long long)eval_seq,
                        config.c_str(), positions_field, (long long)cfg.positions()),
           2;
  if (gen_prompt + gen_tokens > cfg.positions())
    return std::fprintf(stderr, "--gen-prompt + --gen-tokens: %lld is longer than --config %s's %s (%lld)\n",
                        (long long)(gen_prompt + gen_tokens), config.c_str(), positions_field,
                        (long long)cfg.positions()),
           2;

  const double t_start = now_s();
  omp_set_num_threads(threads);
  log("galvani, threads %d, config %s%s", omp_get_max_threads(), config.c_str(), quick ? " (quick)" : "");

  char date[64];
  std::time_t tt = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&tt));
  json result = {{"bench", "galvani_bench_train"},
                 {"schema", 1},
                 {"config", config},
                 {"model_config", cfg.config_json()},
                 {"quick", quick},
                 {"seed", seed},
                 {"threads", omp_get_max_threads()},
                 {"warmup", warmup},
                 {"timed_train_steps", steps},
                 {"eval_repeats", eval_reps},
                 {"gen_repeats", gen_reps},
                 {"cpu", cpu_model()},
                 {"usable_cpus", std::thread::hardware_concurrency()},
                 {"allocator", {{"kind", "glibc"}, {"keep_freed_memory", true}}},
                 {"date", date}};

  const double rss_before = rss_mb();
  const std::unique_ptr<CausalLM> built = cfg.build(seed);
  CausalLM& model = *built;
  result["n_params"] = model.num_parameters();
  result["matmul_params"] = cfg.matmul_params();
  result["rss_mb_before_model"] = rss_before;
  result["rss_mb_after_model"] = rss_mb();
  log("%s: %lld parameters (%.0f MiB fp32)", config.c_str(), (long long)model.num_parameters(),
      double(model.num_parameters()) * 4 / (1 << 20));

  std::vector<double> loads;
  auto section = [&](auto&& fn) {
    if (wait_idle > 0) wait_for_idle(wait_idle);
    const double la = loadavg_1m();
    ForeignLoad load;
    json out = fn();
    out["foreign_cpu_load"] = load.fraction();
    out["loadavg_1m_before"] = la;
    loads.push_back(out["foreign_cpu_load"].get<double>());
    return out;
  };
  if (do_train) {
    result["train"] = json::array();
    for (int64_t s : seq_lens)
      result["train"].push_back(section([&] { return bench_train(model, cfg, train_batch, s, warmup, steps, seed, po); }));
    result["train_peak_rss_mb"] = max_rss_mb();
  }
  if (do_eval)
    result["eval"] = section([&] { return bench_eval(model, cfg, 1, eval_seq, warmup, eval_reps, seed, po); });
  if (do_gen)
    result["generate"] = section([&] { return bench_generate(model, cfg, gen_prompt, gen_tokens, 1, gen_reps, seed); });
  if (do_gen16) {
    const std::unique_ptr<CausalLM> model16 = cfg.build(seed, DType::bf16);
    log("%s with bf16 weights: %.0f MiB", config.c_str(), double(model.num_parameters()) * 2 / (1 << 20));
    result["generate_bf16"] =
        section([&] { return bench_generate(*model16, cfg, gen_prompt, gen_tokens, 1, gen_reps, seed, 2); });
    if (do_gen)
      result["generate_bf16"]["speedup_vs_f32"] = result["generate_bf16"]["tokens_per_s"].get<double>() /
                                                  result["generate"]["tokens_per_s"].get<double>();
  }
  result["peak_rss_mb_end"] = max_rss_mb();

  if (!no_machine) {
    log("machine: 2048^3 GEMM and 256 MiB copy ...");
    if (wait_idle > 0) wait_for_idle(wait_idle);
    ForeignLoad load;
    result["machine"] = bench_machine(machine_reps);
    result["machine"]["foreign_cpu_load"] = load.fraction();
    loads.push_back(result["machine"]["foreign_cpu_load"].get<double>());
    const double peak = result["machine"]["sgemm_gflops"]["median"].get<double>();
    log("  GEMM %.1f GFLOP/s, copy %.1f GB/s, first-touch fill %.2f GB/s", peak,
        result["machine"]["copy_gbps"]["median"].get<double>(),
        result["machine"]["first_touch_fill_gbps"]["median"].get<double>());
    if (do_train)
      for (auto& r : result["train"]) r["fraction_of_sgemm"] = r["achieved_gflops"].get<double>() / peak;
    if (do_eval) result["eval"]["fraction_of_sgemm"] = result["eval"]["achieved_gflops"].get<double>() / peak;
    for (const char* key : {"generate", "generate_bf16"})
      if (result.contains(key))
        result[key]["fraction_of_copy_bw"] = result[key]["weight_stream_gbps"].get<double>() /
                                             result["machine"]["copy_gbps"]["median"].get<double>();
  }
  result["max_foreign_cpu_load"] = loads.empty() ? 0.0 : *std::max_element(loads.begin(), loads.end());
  if (result["max_foreign_cpu_load"].get<double>() > 0.05)
    log("WARNING: other processes used up to %.0f%% of the CPUs during a timed section; these numbers are "
        "contaminated (try --wait-idle 600)",
        100 * result["max_foreign_cpu_load"].get<double>());
  result["wall_s"] = now_s() - t_start;
  std::printf("%s\n", result.dump().c_str());
  std::fflush(stdout);
  log("done in %.1fs", result["wall_s"].get<double>());
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // galvani::Error and the standard library's: a message, not an abort
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
