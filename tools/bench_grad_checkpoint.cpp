// bench_grad_checkpoint — what gradient checkpointing saves and costs on one training step:
// activation memory and step time, with and without it, on a model of a real shape.
//
//   build/bench_grad_checkpoint --shape smollm2-135m --method qlora --batch 2 --seq-len 256
//   build/bench_grad_checkpoint --config weights/smollm2-135m-instruct/config.json --method full
//
// The model is randomly initialised from the shape (memory and time do not depend on the
// values), built twice from one seed: once plain, once with checkpointing. Methods:
//   full    every parameter trains (f32);
//   lora    LoRA r = 32, alpha 64, dropout 0.05 on peft's default targets, f32 base;
//   qlora   the course's step 4: NF4 + double quantization, prepare_model_for_kbit_training
//           (checkpointing on in the second run, off in the first), then the same LoRA.
// One warm-up step, then one measured step (forward, causal-LM loss, backward), batch B × T
// of random token ids. Memory is galvani's tensor accounting (core/allocator.hpp's
// memory_stats), above what was allocated before the step:
//   held   what the graph keeps from the end of forward until backward (the activations);
//   peak   the most allocated during forward + backward (it includes the gradients, which
//          are the same in both runs).
// The trainable parameters' gradients of the two runs are compared byte for byte.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <galvani/core/memory.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/kbit.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <map>

using namespace galvani;

namespace {

// SmolLM2-135M(-Instruct)'s config.json (docs/real-weights.md): Llama, 30 layers, d = 576.
io::ModelConfig smollm2_135m() {
  MistralConfig c = MistralConfig::defaults("llama");
  c.vocab_size = 49152;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 30;
  c.num_attention_heads = 9;
  c.num_key_value_heads = 3;
  c.max_position_embeddings = 8192;
  c.rope_theta = 100000;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  c.pad_token_id = 2;
  return c;
}

struct Result {
  int64_t held = 0, peak = 0;
  double step_s = 0;
  std::map<std::string, Tensor> grads;
};

Result run(const io::ModelConfig& cfg, const std::string& method, bool ckpt, const Tensor& ids) {
  auto model = make_causal_lm(cfg, uint64_t(0));
  if (method == "qlora") {
    quantize_model(*model, BitsAndBytesConfig::qlora());
    model->quantization_config = BitsAndBytesConfig::qlora();
    prepare_model_for_kbit_training(*model, /*use_gradient_checkpointing=*/ckpt);
  } else if (ckpt) {
    model->gradient_checkpointing_enable();
  }
  if (method != "full") {
    LoraConfig lc;
    lc.r = 32;
    lc.lora_alpha = 64;
    lc.lora_dropout = 0.05;
    get_peft_model(*model, lc);
  }
  model->train();
  Result r;
  for (int step = 0; step < 2; ++step) {
    model->zero_grad();
    const int64_t before = memory_allocated();
    reset_peak_memory_stats();
    const auto t0 = std::chrono::steady_clock::now();
    Tensor loss = causal_lm_loss(model->forward(ids), ids);
    r.held = memory_allocated() - before;
    loss.backward();
    r.step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.peak = max_memory_allocated() - before;
  }
  for (auto& [name, p] : model->named_parameters())
    if (p.requires_grad()) r.grads[name] = p.grad();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Activation memory and step time of a training step with and without gradient checkpointing"};
  std::string shape = "smollm2-135m", config_path, method = "qlora";
  int64_t batch = 2, seq_len = 256;
  int threads = 0;
  app.add_option("--shape", shape, "a built-in model shape: smollm2-135m")->check(CLI::IsMember({"smollm2-135m"}));
  app.add_option("--config", config_path, "a config.json to take the shape from instead (weights are not read)");
  app.add_option("--method", method, "full, lora or qlora")->check(CLI::IsMember({"full", "lora", "qlora"}));
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--seq-len", seq_len, "tokens per row")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "OpenMP threads (0: the default)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  keep_freed_memory();
  try {
    const io::ModelConfig cfg = config_path.empty() ? smollm2_135m() : io::load_model_config(config_path);
    std::vector<int64_t> v(size_t(batch * seq_len));
    Generator g(1);
    const int64_t vocab = std::visit([](const auto& c) { return c.vocab_size; }, cfg);
    for (auto& x : v) x = int64_t(g.next_u64() % uint64_t(vocab));
    const Tensor ids = Tensor::from_vector(v, {batch, seq_len});

    std::fprintf(stderr, "plain step …\n");
    const Result plain = run(cfg, method, false, ids);
    std::fprintf(stderr, "checkpointed step …\n");
    const Result ckpt = run(cfg, method, true, ids);
    bool same = plain.grads.size() == ckpt.grads.size();
    for (const auto& [name, gp] : plain.grads) {
      auto it = ckpt.grads.find(name);
      if (it == ckpt.grads.end() || !gp.defined() || !it->second.defined()) { same = false; continue; }
      const Tensor a = gp.contiguous(), b = it->second.contiguous();
      same = same && a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
    }
    const auto mib = [](int64_t b) { return double(b) / double(1 << 20); };
    std::printf("%s, %s, batch %lld x %lld tokens, %d threads\n", config_path.empty() ? shape.c_str() : config_path.c_str(),
                method.c_str(), (long long)batch, (long long)seq_len, omp_get_max_threads());
    std::printf("%-22s %12s %12s %8s\n", "", "plain", "checkpointed", "ratio");
    std::printf("%-22s %10.1f MiB %8.1f MiB %8.2f\n", "held after forward", mib(plain.held), mib(ckpt.held),
                double(ckpt.held) / double(plain.held));
    std::printf("%-22s %10.1f MiB %8.1f MiB %8.2f\n", "peak forward+backward", mib(plain.peak), mib(ckpt.peak),
                double(ckpt.peak) / double(plain.peak));
    std::printf("%-22s %12.2f s %10.2f s %8.2f\n", "step time", plain.step_s, ckpt.step_s, ckpt.step_s / plain.step_s);
    std::printf("gradients of the %zu trainable tensors bit-identical: %s\n", plain.grads.size(), same ? "yes" : "NO");
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_grad_checkpoint: %s\n", e.what());
    return 1;
  }
}
