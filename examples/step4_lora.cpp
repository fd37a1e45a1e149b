// Course step 4 — LoRA: only a small subset of parameters trains.
//
// The notebook did, on the 4-bit model of step 3:
//   model = prepare_model_for_kbit_training(model)  # frozen, float parts f32, gradient checkpointing
//   config = LoraConfig(r=32, lora_alpha=64, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM")
//   model = get_peft_model(model, config)          # target_modules: peft's default for the model
//   model.print_trainable_parameters()
//
// Each adapted linear y = W·x becomes y = W·x + (alpha/r)·B·A·dropout(x), with W frozen (here in
// 4 bits), A (r, in) drawn Kaiming-uniform and B (out, r) zero — so the adapted model starts as
// the base model exactly. This prints every adapted module with its shapes, peft's
// trainable-parameters line, and what the adapter costs next to the model.
//
//   build/step4_lora                                          # the tiny random GPT-2, 4-bit base
//   build/step4_lora --model weights/smollm2-135m-instruct    # q_proj, v_proj of 30 layers
//   build/step4_lora --target-modules all-linear --lora-r 8 --out runs/step4/adapter
#include <cstdio>
#include <CLI/CLI.hpp>

#include "course.hpp"

using namespace course;

int main(int argc, char** argv) {
  CLI::App app{"Course step 4: LoRA adapters with peft's semantics over a (4-bit) model; what trains"};
  std::string model_name = "tiny", out;
  MethodFlags lora_flags;
  bool float_base = false;
  uint64_t seed = 42;
  app.add_option("--model", model_name, "tiny (random, --seed), distilgpt2 or a Hugging Face model directory")
      ->capture_default_str();
  app.add_flag("--float-base", float_base, "keep the base in float32 (the same as --method lora)");
  lora_flags.method = "qlora";  // step 4 of the course adds adapters over the NF4 base of step 3
  lora_flags.add_to(app);
  app.add_option("--out", out, "save the fresh adapter here in peft's format (adapter_config.json + "
                               "adapter_model.safetensors)");
  app.add_option("--seed", seed, "seed of tiny's initialisation and of the LoRA A matrices")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    GALVANI_CHECK(lora_flags.method != "full", "step4_lora adds LoRA adapters: --method full trains every weight "
                  "and has no adapters (step5_finetune --method full); use --method lora or qlora");
    if (lora_flags.method == "lora") float_base = true;
    std::unique_ptr<CausalLM> model = load_model(model_name, seed, /*load_in_4bit=*/!float_base);
    model->set_seed(seed);
    const int64_t base_bytes = get_memory_footprint(*model);
    const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 5, 8, 13, 21, 34}, {1, 8});
    model->eval();
    Tensor before;
    {
      NoGradGuard ng;
      before = model->forward(ids);
    }

    if (!float_base) prepare_model_for_kbit_training(*model, lora_flags.gradient_checkpointing);
    LoraConfig config = lora_flags.lora_config(model_name);
    get_peft_model(*model, config);
    std::printf("%s%s, LoraConfig(r=%lld, lora_alpha=%g, lora_dropout=%g%s): scaling %.4g\n\n", model_name.c_str(),
                float_base ? "" : " (NF4)", (long long)config.r, config.lora_alpha, config.lora_dropout,
                config.use_rslora ? ", use_rslora=True" : "", config.scaling());

    std::printf("%-44s %-10s %14s %14s %14s\n", "adapted module", "base", "in -> out", "lora_A (r,in)",
                "lora_B (out,r)");
    int64_t adapter_bytes = 0;
    for (const auto& [name, l] : lora_layers(*model)) {
      char io[32], a[32], b[32];
      std::snprintf(io, sizeof io, "%lld -> %lld", (long long)l->in_features(), (long long)l->out_features());
      std::snprintf(a, sizeof a, "(%lld, %lld)", (long long)l->A().size(0), (long long)l->A().size(1));
      std::snprintf(b, sizeof b, "(%lld, %lld)", (long long)l->B().size(0), (long long)l->B().size(1));
      std::printf("%-44s %-10s %14s %14s %14s\n", name.c_str(), l->base_layer->type_name().c_str(), io, a, b);
      adapter_bytes += int64_t(l->A().nbytes() + l->B().nbytes());
    }
    std::printf("\n");
    print_trainable_parameters(*model);  // peft's line (4-bit weights count twice: two per byte)
    std::printf("memory: base %.2f MiB, adapter %.3f MiB (f32) = %.2f%% more\n", double(base_bytes) / 1048576.0,
                double(adapter_bytes) / 1048576.0, 100.0 * double(adapter_bytes) / double(base_bytes));

    // B = 0: the adapted model computes what the base computes, bit for bit.
    {
      NoGradGuard ng;
      const Tensor after = model->forward(ids);
      const bool same = host_values<float>(after, "step4") == host_values<float>(before, "step4");
      std::printf("logits with the fresh adapter %s the base model's (B starts at zero)\n",
                  same ? "equal" : "DIFFER FROM");
      GALVANI_CHECK(same, "a fresh adapter changed the logits: LoRA B must start at zero");
    }
    if (!out.empty()) {
      save_adapter(*model, config, out);
      std::printf("saved the adapter to %s: in Python, PeftModel.from_pretrained(base, \"%s\")\n", out.c_str(),
                  out.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
