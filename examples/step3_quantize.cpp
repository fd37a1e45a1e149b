// Course step 3 — the model in 4 bits, as the GPU run loads Mistral-7B:
//
//   BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True,
//                      bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
//
// Every linear layer but lm_head becomes a Linear4bit (models/quantize.hpp): its weight is cut
// into blocks of 64, each block keeps its absmax and 64 four-bit codes into the 16 NF4 values,
// and the absmax themselves are quantized to 8 bits in blocks of 256 (double quantization).
// This prints what that saves and what it costs:
//   memory before/after     transformers' get_memory_footprint(), and what the model really holds
//   error per layer type    ‖W − dequant(W)‖ / ‖W‖ over all layers of a type (c_attn, q_proj, …)
//   logits                  how far the 4-bit model's logits move on a few tokens
// and saves a checkpoint transformers loads with from_pretrained(out) (docs/quantization.md).
//
//   build/step3_quantize                                           # the tiny random GPT-2
//   build/step3_quantize --model weights/distilgpt2 --out runs/step3
#include <cstdio>
#include <CLI/CLI.hpp>
#include <cmath>
#include <map>

#include <galvani/models/quantize.hpp>

#include "course.hpp"

using namespace course;

namespace {
// The float weight of a Linear or Conv1D as (out, in), the orientation bnb quantizes.
Tensor weight_out_in(const Module& m) {
  if (auto* l = dynamic_cast<const Linear*>(&m)) return l->weight.detach();
  return dynamic_cast<const Conv1D&>(m).weight.detach().transpose(0, 1).contiguous();
}
std::string last_part(const std::string& name) { return name.substr(name.rfind('.') + 1); }
double mib(int64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Course step 3: quantize a model to 4-bit NF4 (bitsandbytes' format) and measure what it costs"};
  std::string model_name = "tiny", out = "runs/step3", quant_type = "nf4", compute_dtype = "bfloat16";
  bool no_double_quant = false;
  uint64_t seed = 42;
  app.add_option("--model", model_name, "tiny (random, --seed), distilgpt2 or a Hugging Face model directory")
      ->capture_default_str();
  app.add_option("--out", out, "where to save the 4-bit checkpoint (empty: do not save)")->capture_default_str();
  app.add_option("--quant-type", quant_type, "nf4 or fp4 (bnb_4bit_quant_type)")
      ->capture_default_str()
      ->check(CLI::IsMember({"nf4", "fp4"}));
  app.add_option("--compute-dtype", compute_dtype,
                 "bnb_4bit_compute_dtype written to the config: transformers computes the 4-bit layers in it "
                 "(galvani computes them in float32, or in the autocast dtype of a --bf16/--fp16 training run; "
                 "float32 here makes the two agree)")
      ->capture_default_str();
  app.add_flag("--no-double-quant", no_double_quant, "keep absmax in float32 (bnb_4bit_use_double_quant=False)");
  app.add_option("--seed", seed, "seed of tiny's initialisation")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    BitsAndBytesConfig config = BitsAndBytesConfig::qlora();  // the course's GPU setting
    config.bnb_4bit_quant_type = quant_type;
    config.bnb_4bit_use_double_quant = !no_double_quant;
    config.bnb_4bit_compute_dtype = compute_dtype;
    std::unique_ptr<CausalLM> model = load_model(model_name, seed);
    model->eval();

    // Before: the footprint, a few tokens' logits, and the float weights we are about to replace.
    const int64_t before = get_memory_footprint(*model);
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < 16; ++t) ids.push_back((t * 7919 + 11) % model->vocab_size());
    const Tensor input = Tensor::from_vector(ids, {1, int64_t(ids.size())});
    Tensor logits_before;
    {
      NoGradGuard ng;
      logits_before = model->forward(input);
    }
    std::map<std::string, Tensor> original;
    for (const std::string& name : bnb_targets(*model, config)) original[name] = weight_out_in(model->get_submodule(name));

    const std::vector<std::string> replaced = quantize_model(*model, config);
    model->quantization_config = config;

    // After: transformers' number counts the packed weights only; the quant state (absmax,
    // quant_map, nested absmax and map) is held too, so both are printed.
    const int64_t after = get_memory_footprint(*model);
    int64_t state_bytes = 0, scale_bytes = 0, n_weights = 0, packed_bytes = 0;
    std::map<std::string, std::pair<double, double>> err;  // type → (Σ(W−Ŵ)², ΣW²)
    std::map<std::string, int> count;
    for (const std::string& name : replaced) {
      const auto& q = model->get_submodule_as<Linear4bit>(name);
      const int64_t packed = int64_t(q.packed_weight().nbytes());
      const int64_t bias = q.bias.defined() ? int64_t(q.bias.nbytes()) : 0;
      packed_bytes += packed;
      state_bytes += q.nbytes() - packed - bias;
      const quant::QuantState4bit& st = q.quant_state();  // absmax (+ nested absmax): the per-block scales
      scale_bytes += int64_t(st.absmax.nbytes()) + (st.nested ? int64_t(st.nested_absmax.nbytes()) : 0);
      n_weights += q.in_features() * q.out_features();
      const std::vector<float> w = host_values<float>(original[name].to(DType::f32), "step3");
      const std::vector<float> wq = host_values<float>(q.dequantized(DType::f32), "step3");
      auto& [num, den] = err[last_part(name)];
      for (size_t i = 0; i < w.size(); ++i) num += double(w[i] - wq[i]) * (w[i] - wq[i]), den += double(w[i]) * w[i];
      ++count[last_part(name)];
    }
    original.clear();

    std::printf("model %s: %zu linear layers quantized (%s, double quant %s, blocksize 64), lm_head kept\n",
                model_name.c_str(), replaced.size(), quant_type.c_str(), no_double_quant ? "off" : "on");
    std::printf("get_memory_footprint   before %9.3f MiB   after %9.3f MiB   (%.1f%%)\n", mib(before), mib(after),
                100.0 * double(after) / double(before));
    std::printf("  + quant state (absmax, maps) %.3f MiB that transformers does not count\n", mib(state_bytes));
    std::printf("bits per quantized weight: 4 (codes) + %.3f (absmax%s) + %.3f (quant_map tables, fixed per layer)\n",
                8.0 * double(scale_bytes) / double(n_weights), no_double_quant ? "" : " 8-bit + nested absmax",
                8.0 * double(state_bytes - scale_bytes) / double(n_weights));
    std::printf("\nrelative RMS error of the dequantized weight, ||W - dequant(W)|| / ||W||:\n");
    for (const auto& [type, e] : err)
      std::printf("  %-10s %2d layers   %.4f\n", type.c_str(), count[type], std::sqrt(e.first / e.second));

    Tensor logits_after;
    {
      NoGradGuard ng;
      logits_after = model->forward(input);
    }
    const std::vector<float> a = host_values<float>(logits_before, "step3"), b = host_values<float>(logits_after, "step3");
    double num = 0, den = 0, top_same = 0;
    const int64_t V = model->vocab_size();
    for (size_t i = 0; i < a.size(); ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(a[i]) * a[i];
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* ra = a.data() + t * size_t(V);
      const float* rb = b.data() + t * size_t(V);
      top_same += std::max_element(ra, ra + V) - ra == std::max_element(rb, rb + V) - rb;
    }
    std::printf("\nlogits on %zu tokens: relative RMS change %.4f, same top-1 token at %.0f of %zu positions\n",
                ids.size(), std::sqrt(num / den), top_same, ids.size());

    if (!out.empty()) {
      io::SavePretrainedOptions so;
      if (model_name != "tiny") so.tokenizer_dir = model_name == "distilgpt2" ? fs::path("weights/distilgpt2") : fs::path(model_name);
      save_causal_lm(*model, out, so);
      std::printf("\nsaved %s (bitsandbytes' keys + quantization_config): in Python,\n"
                  "  AutoModelForCausalLM.from_pretrained(\"%s\", device_map=\"cpu\")\n", out.c_str(), out.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
