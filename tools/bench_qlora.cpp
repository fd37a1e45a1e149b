// bench_qlora — one QLoRA training step on SmolLM2-135M's shape, measured the way
// ../shared/bench/hf_baseline.py measures transformers + peft + bitsandbytes (its `qlora`
// mode), so the two JSON lines divide key by key.
//
//   build-bench/bench_qlora --threads 2 --quick                   # the course's QLoRA recipe
//   build-bench/bench_qlora --threads 2 --quick --method full      # the same model, full finetune
//   build-bench/bench_qlora --threads 2 --quick --no-gradient-checkpointing
//
// The step (hf_baseline.py's): LlamaForCausalLM with SmolLM2-135M's shape, random init (seed 0),
// quantized to NF4 with double quantization, prepare_model_for_kbit_training (gradient
// checkpointing on), LoRA r=32, alpha 64, dropout 0.05 on q_proj and v_proj (peft's default),
// paged_adamw_8bit at lr 2e-5; then forward + causal-LM loss + backward + optimizer step +
// zero_grad on one batch of 2 × 256 random token ids. Median of the timed steps after
// untimed warm-up steps; peak RSS of the process. --method full trains every weight of the
// float model with adamw_torch instead (no quantization, no adapters, no checkpointing), for
// the QLoRA-vs-full comparison.
#include <CLI/CLI.hpp>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <galvani/galvani.hpp>
#include <galvani/models/kbit.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/optim/bnb_adamw.hpp>
#include <nlohmann/json.hpp>
#include <vector>

using namespace galvani;

namespace {
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

// SmolLM2-135M's config.json (hf_baseline.py's SMOLLM2).
MistralConfig smollm2() {
  MistralConfig c = MistralConfig::defaults("llama");
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 30;
  c.num_attention_heads = 9;
  c.num_key_value_heads = 3;
  c.vocab_size = 49152;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100000.0;
  c.tie_word_embeddings = true;
  return c;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"One QLoRA (or full) training step on SmolLM2-135M's shape, as hf_baseline.py qlora measures it"};
  int threads = 0, steps = 0, warmup = -1;
  int64_t batch = 2, seq = 256, r = 32;
  bool quick = false, no_gc = false;
  std::string method = "qlora";
  app.add_option("--threads", threads, "omp_set_num_threads (default: all cores)");
  app.add_option("--method", method, "qlora (NF4 + LoRA + paged_adamw_8bit) or full (f32, adamw_torch)")
      ->capture_default_str()
      ->check(CLI::IsMember({"qlora", "full"}));
  app.add_option("--steps", steps, "timed steps (default 10, --quick 3)");
  app.add_option("--warmup", warmup, "untimed warm-up steps (default 2, --quick 1)");
  app.add_flag("--quick", quick, "1 warm-up step and 3 timed steps, as hf_baseline.py --quick");
  app.add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seq", seq, "sequence length")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lora-r", r, "LoRA rank")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--no-gradient-checkpointing", no_gc, "qlora: prepare_model_for_kbit_training(use_gradient_checkpointing=False)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  if (steps <= 0) steps = quick ? 3 : 10;
  if (warmup < 0) warmup = quick ? 1 : 2;

  try {
    keep_freed_memory();
    const auto t_build = std::chrono::steady_clock::now();
    MistralForCausalLM model(smollm2(), uint64_t(0));
    std::unique_ptr<Optimizer> opt;
    AdamWOptions ao;
    ao.lr = 2e-5;
    ao.weight_decay = 0.0;
    if (method == "qlora") {
      quantize_model(model, BitsAndBytesConfig::qlora());
      model.quantization_config = BitsAndBytesConfig::qlora();
      prepare_model_for_kbit_training(model, !no_gc);
      LoraConfig lc;
      lc.r = r;
      lc.lora_alpha = 64;
      lc.lora_dropout = 0.05;
      get_peft_model(model, lc);
      opt = make_optimizer("paged_adamw_8bit", model.trainable_parameters(), ao);
    } else {
      opt = make_optimizer("adamw_torch", model.trainable_parameters(), ao);
    }
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();
    std::fprintf(stderr, "%s: %s (built in %.1f s)\n", method.c_str(), trainable_parameters_line(model).c_str(), build_s);

    model.train();
    model.set_seed(0);
    std::vector<int64_t> ids(size_t(batch * seq));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(Generator::hash(0, i) % uint64_t(model.vocab_size()));
    const Tensor input = Tensor::from_vector(ids, {batch, seq});
    const auto step = [&] {
      Tensor logits = model.forward(input);
      Tensor loss = causal_lm_loss(logits, input);
      loss.backward();
      opt->step();
      opt->zero_grad();
      return loss.item();
    };
    for (int i = 0; i < warmup; ++i) step();
    std::vector<double> times;
    double loss = 0;
    for (int i = 0; i < steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      loss = step();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fprintf(stderr, "step %d: %.0f ms, loss %.4f\n", i + 1, times.back() * 1e3, loss);
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    const double tps = double(batch * seq) / med;
    std::fprintf(stderr, "%s train: %.1f tok/s, peak RSS %.0f MB\n", method.c_str(), tps, peak_rss_mb());
    const ParameterCount pc = count_parameters(model);
    nlohmann::json out = {
        {"what", method == "qlora" ? "galvani QLoRA (NF4 + LoRA r=" + std::to_string(r) + " q/v + paged_adamw_8bit), SmolLM2-135M shape"
                                   : "galvani full finetune (f32, adamw_torch), SmolLM2-135M shape"},
        {"threads", omp_get_max_threads()},
        {"gradient_checkpointing", model.is_gradient_checkpointing()},
        {"train", {{{"seq", seq}, {"batch", batch}, {"step_ms", med * 1e3}, {"tokens_per_s", tps}, {"loss", loss}}}},
        {"train_peak_rss_mb", peak_rss_mb()},
        {"trainable_params", pc.trainable}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
