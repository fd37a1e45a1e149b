// Gradient checkpointing (autograd/checkpoint.hpp, CausalLM::gradient_checkpointing_enable) and
// peft's prepare_model_for_kbit_training (models/kbit.hpp).
//
// The gradients with checkpointing must be the plain run's, bit for bit: the recompute runs
// the same ops on the same values, with the model generator replayed so that every dropout
// mask (embedding, attention, residual, LoRA) repeats, and each parameter of a decoder layer
// gets its gradient from one place. So every comparison here is of bytes, over two training
// steps in a row (the second checks that the generator continues where a plain run's does).
// Small random models, built twice from one seed; dropout 0.1 everywhere it exists.
#include <catch2/catch.hpp>

#include <cstdio>
#include <optional>

#include <galvani/autograd/checkpoint.hpp>
#include <galvani/core/autocast.hpp>
#include <galvani/models/gpt2.hpp>
#include <galvani/models/kbit.hpp>
#include <galvani/models/mistral.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/ops/reduction.hpp>

#include "io_test_util.hpp"

using namespace galvani;
using galvani::io::testing::same_bytes;

namespace {

GPT2Config tiny_gpt2(int64_t layers = 3) {
  GPT2Config c;
  c.vocab_size = 64;
  c.n_positions = 32;
  c.n_embd = 32;
  c.n_layer = layers;
  c.n_head = 4;
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.1;
  return c;
}

MistralConfig tiny_mistral(int64_t layers = 3) {
  MistralConfig c = MistralConfig::defaults("mistral");
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.sliding_window = 8;       // shorter than T: the window is part of what is recomputed
  c.attention_dropout = 0.1;  // HF's default is 0; dropout makes the replayed masks matter
  c.pad_token_id = 0;
  return c;
}

// (2, 12) token ids, the second row padded (id 0, mask 0) over its last 3 positions.
std::pair<Tensor, Tensor> batch(uint64_t seed) {
  std::vector<int64_t> ids(24), mask(24, 1);
  Generator g(seed);
  for (auto& v : ids) v = 1 + int64_t(g.next_u64() % 63);
  for (int t = 9; t < 12; ++t) ids[size_t(12 + t)] = 0, mask[size_t(12 + t)] = 0;
  return {Tensor::from_vector(ids, {2, 12}), Tensor::from_vector(mask, {2, 12})};
}

struct Step {
  Tensor loss;
  NamedTensors grads;  // every parameter that requires grad, and its gradient
  Generator::State rng;
  int64_t held = 0;    // bytes the graph kept between forward and backward
};

// One training step: forward in train mode (under autocast to `amp` when given, as the Trainer's
// bf16/fp16), causal-LM loss, backward (outside autocast, as in torch).
Step train_step(CausalLM& m, uint64_t seed, std::optional<DType> amp = std::nullopt) {
  auto [ids, mask] = batch(seed);
  m.zero_grad();
  const int64_t before = memory_allocated();
  Tensor loss;
  {
    AutocastGuard guard(amp.value_or(DType::bf16), amp.has_value());
    loss = causal_lm_loss(m.forward(ids, mask), ids);
  }
  const int64_t held = memory_allocated() - before;
  loss.backward();
  Step s{loss.detach(), {}, m.generator().state(), held};
  for (auto& [name, p] : m.named_parameters())
    if (p.requires_grad()) s.grads.emplace_back(name, p.grad());
  return s;
}

// The two runs' steps agree byte for byte: loss, every gradient, the generator after.
void check_identical(const Step& plain, const Step& ckpt) {
  CHECK(same_bytes(plain.loss, ckpt.loss));
  CHECK(plain.rng == ckpt.rng);
  REQUIRE(plain.grads.size() == ckpt.grads.size());
  REQUIRE(!plain.grads.empty());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    INFO(plain.grads[i].first);
    REQUIRE(plain.grads[i].first == ckpt.grads[i].first);
    REQUIRE(plain.grads[i].second.defined());
    REQUIRE(ckpt.grads[i].second.defined());
    CHECK(same_bytes(plain.grads[i].second, ckpt.grads[i].second));
  }
}

// Two steps on `plain` and on `ckpt` (the same model, built twice), checkpointing on in the
// second; both compared. The caller has set them up identically otherwise.
void compare_two_steps(CausalLM& plain, CausalLM& ckpt, std::optional<DType> amp = std::nullopt) {
  plain.train();
  ckpt.train();
  REQUIRE(ckpt.is_gradient_checkpointing());
  REQUIRE(!plain.is_gradient_checkpointing());
  for (uint64_t seed : {11, 12}) {
    INFO("step with batch seed " << seed);
    const Step a = train_step(plain, seed, amp), b = train_step(ckpt, seed, amp);
    check_identical(a, b);
    CHECK(b.held < a.held);  // the layers were checkpointed: their activations were not kept
  }
}

// LoRA r = 4 with dropout on peft's default targets; B is set to random values (the same in
// both models) so that A's gradient is not zero.
void add_lora(CausalLM& m) {
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 8;
  cfg.lora_dropout = 0.1;
  REQUIRE(!get_peft_model(m, cfg).empty());
  Generator g(5);
  NoGradGuard ng;
  for (auto& [name, l] : lora_layers(m)) copy_into(l->B(), rand_normal(l->B().shape(), 0, 0.1, g));
}

BitsAndBytesConfig nf4() {
  BitsAndBytesConfig c = BitsAndBytesConfig::qlora();  // nf4, double quantization
  return c;
}

}  // namespace

TEST_CASE("checkpoint(): same output and gradients as the plain call, dropout replayed", "[checkpoint]") {
  Generator init(1);
  Tensor x0 = rand_normal({4, 8}, 0, 1, init);
  Tensor w0 = rand_normal({6, 8}, 0, 0.3, init);
  // fn draws a dropout mask, so the recompute must see the generator as the forward did.
  Generator gen(7);
  auto fn = [&gen](const std::vector<Tensor>& in) { return dropout(gelu_tanh(linear(in[0], in[1])), 0.3, true, gen); };
  auto run = [&](bool ckpt, bool x_grad, bool list_params) {
    gen = Generator(7);
    Tensor x = x0.clone(), w = w0.clone();
    if (x_grad) x.requires_grad_();
    w.requires_grad_();
    Tensor y;
    if (!ckpt) {
      y = fn({x, w});
    } else {
      // w enters as an input here; as a "parameter" it is captured and listed in params.
      CheckpointOptions opt;
      opt.preserve_rng = {&gen};
      if (list_params) opt.params = {w};
      y = checkpoint([&fn, w](const std::vector<Tensor>& in) { return fn({in[0], w}); }, {x}, opt);
    }
    Tensor out = mul(y, 1.0);  // an op after the checkpoint, as a next layer
    if (out.requires_grad()) sum(out).backward();
    return std::tuple{out.detach(), x_grad ? x.grad() : Tensor(), w.grad(), gen.state(), out.requires_grad()};
  };
  auto [y0, gx0, gw0, rng0, req0] = run(false, true, true);
  auto [y1, gx1, gw1, rng1, req1] = run(true, true, true);
  CHECK(same_bytes(y0, y1));
  CHECK(same_bytes(gx0, gx1));
  CHECK(same_bytes(gw0, gw1));
  CHECK(rng0 == rng1);  // the generator ends where the plain run leaves it, not replayed twice

  // Non-reentrant semantics: a frozen input, a listed parameter that trains — it still gets
  // its gradient (a LoRA inside a layer fed by frozen embeddings).
  auto [y2, gx2, gw2, rng2, req2] = run(true, false, true);
  CHECK(req2);
  CHECK(same_bytes(gw0, gw2));
  // Nothing listed and no input needing a gradient: torch's reentrant behaviour, no gradient
  // flows (what enable_input_require_grads exists for).
  auto [y3, gx3, gw3, rng3, req3] = run(true, false, false);
  CHECK(!req3);
  CHECK(!gw3.defined());
  CHECK(same_bytes(y0, y3));

  // Without grad mode checkpoint() is the plain call and records nothing.
  NoGradGuard ng;
  gen = Generator(7);
  Tensor x = x0.clone().requires_grad_();
  Tensor y = checkpoint([&fn, &w0](const std::vector<Tensor>& in) { return fn({in[0], w0}); }, {x});
  CHECK(!y.requires_grad());
  CHECK(same_bytes(y, y0));
}

TEST_CASE("GPT-2 in train mode: gradients with checkpointing are the plain run's, bit for bit", "[checkpoint][gpt2]") {
  SECTION("full finetune (every parameter, tied wte/lm_head)") {
    GPT2LMHeadModel plain(tiny_gpt2(), 3), ckpt(tiny_gpt2(), 3);
    ckpt.gradient_checkpointing_enable();
    compare_two_steps(plain, ckpt);
  }
  SECTION("LoRA on c_attn (frozen base, LoRA dropout)") {
    GPT2LMHeadModel plain(tiny_gpt2(), 3), ckpt(tiny_gpt2(), 3);
    add_lora(plain);
    add_lora(ckpt);
    ckpt.gradient_checkpointing_enable();
    compare_two_steps(plain, ckpt);
  }
  SECTION("LoRA over a 4-bit base, prepared for k-bit training") {
    GPT2LMHeadModel plain(tiny_gpt2(), 3), ckpt(tiny_gpt2(), 3);
    for (GPT2LMHeadModel* m : {&plain, &ckpt}) {
      REQUIRE(quantize_model(*m, nf4()).size() == 12);  // c_attn, c_proj, c_fc, mlp.c_proj × 3
      prepare_model_for_kbit_training(*m, /*use_gradient_checkpointing=*/m == &ckpt);
      add_lora(*m);
    }
    compare_two_steps(plain, ckpt);
  }
}

// The recompute happens in backward, outside the autocast region: checkpoint() sets the forward's
// autocast state again, so the recomputed layers round as the forward did.
TEST_CASE("under autocast (bf16, f16) gradients with checkpointing are the plain run's, bit for bit",
          "[checkpoint][mixed]") {
  for (DType low : {DType::bf16, DType::f16}) {
    INFO(dtype_name(low));
    GPT2LMHeadModel plain(tiny_gpt2(), 3), ckpt(tiny_gpt2(), 3);
    ckpt.gradient_checkpointing_enable();
    compare_two_steps(plain, ckpt, low);
    MistralForCausalLM mplain(tiny_mistral(), 3), mckpt(tiny_mistral(), 3);
    add_lora(mplain);
    add_lora(mckpt);
    mckpt.gradient_checkpointing_enable();
    compare_two_steps(mplain, mckpt, low);
  }
}

TEST_CASE("Mistral in train mode: gradients with checkpointing are the plain run's, bit for bit",
          "[checkpoint][mistral]") {
  SECTION("full finetune (every parameter, padding_idx)") {
    MistralForCausalLM plain(tiny_mistral(), 3), ckpt(tiny_mistral(), 3);
    ckpt.gradient_checkpointing_enable();
    compare_two_steps(plain, ckpt);
  }
  SECTION("LoRA on q_proj, v_proj") {
    MistralForCausalLM plain(tiny_mistral(), 3), ckpt(tiny_mistral(), 3);
    add_lora(plain);
    add_lora(ckpt);
    ckpt.gradient_checkpointing_enable();
    compare_two_steps(plain, ckpt);
  }
  SECTION("LoRA over a bf16 model quantized to 4 bits, prepared for k-bit training (the QLoRA path)") {
    BuildOptions bo{3};
    bo.dtype = DType::bf16;
    MistralForCausalLM plain(tiny_mistral(), bo), ckpt(tiny_mistral(), bo);
    for (MistralForCausalLM* m : {&plain, &ckpt}) {
      REQUIRE(quantize_model(*m, nf4()).size() == 21);  // 7 linears × 3 layers; lm_head stays
      m->quantization_config = nf4();
      prepare_model_for_kbit_training(*m, /*use_gradient_checkpointing=*/m == &ckpt);
      add_lora(*m);
    }
    compare_two_steps(plain, ckpt);
  }
}

TEST_CASE("checkpointing is active only while training with grad mode on; a KV cache is refused then",
          "[checkpoint]") {
  MistralForCausalLM m(tiny_mistral(2), 3);
  CHECK(!m.is_gradient_checkpointing());
  m.gradient_checkpointing_enable();
  CHECK(m.is_gradient_checkpointing());
  CHECK(m.input_require_grads());  // transformers 5 enables input grads with it
  auto [ids, mask] = batch(3);
  // Train mode, grad on: the layers are checkpointed, so a cache cannot be filled.
  m.train();
  KVCache cache = m.new_cache(2, 12);
  CHECK_THROWS_WITH(m.forward(ids, mask, &cache), Catch::Contains("KV cache") && Catch::Contains("use_cache=False"));
  CHECK(cache.length == 0);
  // eval(), or a NoGradGuard in train mode: plain layers, the cache works (generation).
  m.eval();
  CHECK(m.forward(ids, mask, &cache).shape() == (Shape{2, 12, 64}));
  CHECK(cache.length == 12);
  m.gradient_checkpointing_disable();
  CHECK(!m.is_gradient_checkpointing());
  m.train();
  m.gradient_checkpointing_enable();
  NoGradGuard ng;
  KVCache c2 = m.new_cache(2, 12);
  CHECK_NOTHROW(m.forward(ids, mask, &c2));
}

TEST_CASE("prepare_model_for_kbit_training freezes and casts as peft does", "[kbit]") {
  SECTION("a bf16 Mistral quantized to 4 bits: every float parameter f32 and frozen, checkpointing on") {
    BuildOptions bo{3};
    bo.dtype = DType::bf16;
    MistralForCausalLM m(tiny_mistral(2), bo);
    quantize_model(m, nf4());
    m.quantization_config = nf4();
    std::map<std::string, std::string> packed_before;
    for (auto& [name, b] : m.named_buffers()) packed_before[name] = io::testing::fnv1a64(b);
    CHECK(m.model->norm->weight.dtype() == DType::bf16);
    CHECK(&prepare_model_for_kbit_training(m) == &m);
    for (auto& [name, p] : m.named_parameters()) {
      INFO(name);
      CHECK(p.dtype() == DType::f32);  // norms, embed_tokens, lm_head (peft casts them all)
      CHECK(!p.requires_grad());
    }
    // The 4-bit weights are untouched (bnb's Params4bit are skipped by the cast).
    for (auto& [name, b] : m.named_buffers()) {
      INFO(name);
      CHECK(io::testing::fnv1a64(b) == packed_before.at(name));
    }
    CHECK(m.is_gradient_checkpointing());
    CHECK(m.input_require_grads());
    // After get_peft_model only the adapters train, in f32 (peft's autocast_adapter_dtype).
    LoraConfig cfg;
    get_peft_model(m, cfg);
    int64_t trainable = 0;
    for (auto& [name, p] : m.named_parameters()) {
      INFO(name);
      CHECK(p.requires_grad() == (name.find(".lora_") != std::string::npos));
      trainable += p.requires_grad();
    }
    CHECK(trainable == 2 * 2 * 2);  // A and B of q_proj and v_proj in 2 layers
  }
  SECTION("a bf16 model that is not quantized: cast and frozen, but no checkpointing (peft: only k-bit)") {
    BuildOptions bo{3};
    bo.dtype = DType::bf16;
    GPT2LMHeadModel m(tiny_gpt2(2), bo);
    prepare_model_for_kbit_training(m);
    for (auto& [name, p] : m.named_parameters()) {
      INFO(name);
      CHECK(p.dtype() == DType::f32);
      CHECK(!p.requires_grad());
    }
    // The tied lm_head is the embedding's tensor, cast once with it.
    const auto& head = m.get_submodule_as<Linear>("lm_head");
    CHECK(head.weight.is_same(m.transformer->wte->weight));
    CHECK(head.weight.dtype() == DType::f32);
    CHECK(!m.is_gradient_checkpointing());
    CHECK(!m.input_require_grads());
  }
  SECTION("use_gradient_checkpointing = false leaves checkpointing off") {
    MistralForCausalLM m(tiny_mistral(2), 3);
    quantize_model(m, nf4());
    CHECK(is_loaded_in_kbit(m));  // a Linear4bit in the tree is enough
    prepare_model_for_kbit_training(m, false);
    CHECK(!m.is_gradient_checkpointing());
  }
}

TEST_CASE("enable_input_require_grads: the frozen embeddings' output requires grad", "[kbit]") {
  MistralForCausalLM m(tiny_mistral(1), 3);
  for (auto& [name, p] : m.named_parameters()) p.requires_grad_(false);
  auto [ids, mask] = batch(1);
  CHECK(!m.forward(ids, mask).requires_grad());
  m.enable_input_require_grads();
  CHECK(m.forward(ids, mask).requires_grad());
  m.disable_input_require_grads();
  CHECK(!m.forward(ids, mask).requires_grad());
}

// Peak activation memory, measured with core/allocator.hpp's memory_stats(): the bytes of
// tensor storage allocated, and the most there were. "Held after forward" is what the graph
// keeps for backward (allocated after forward − before); "peak" is the most allocated during
// forward + backward − before (it includes the parameters' gradients, the same in both runs).
TEST_CASE("checkpointing reduces the activation memory of a multi-layer model", "[checkpoint][memory]") {
  MistralConfig cfg = tiny_mistral(8);
  cfg.vocab_size = 128;
  cfg.hidden_size = 64;
  cfg.intermediate_size = 224;
  cfg.sliding_window = 4096;
  cfg.attention_dropout = 0.0;
  const int64_t B = 2, T = 128;
  std::vector<int64_t> v(size_t(B * T));
  Generator g(9);
  for (auto& x : v) x = 1 + int64_t(g.next_u64() % 127);
  const Tensor ids = Tensor::from_vector(v, {B, T});

  struct Mem {
    int64_t held, peak;
  };
  auto measure = [&](bool ckpt) {
    MistralForCausalLM m(cfg, 3);
    m.train();
    if (ckpt) m.gradient_checkpointing_enable();
    const int64_t before = memory_allocated();
    reset_peak_memory_stats();
    Tensor loss = causal_lm_loss(m.forward(ids), ids);
    const int64_t held = memory_allocated() - before;
    loss.backward();
    const int64_t peak = max_memory_allocated() - before;
    return Mem{held, peak};
  };
  const Mem plain = measure(false), ckpt = measure(true);
  std::printf("activation memory, Mistral-shaped 8 layers, C=64, I=224, B=2, T=128 (f32):\n"
              "  held after forward: %lld bytes plain, %lld with checkpointing (%.2fx)\n"
              "  peak during forward+backward: %lld plain, %lld with checkpointing (%.2fx)\n",
              (long long)plain.held, (long long)ckpt.held, double(ckpt.held) / double(plain.held),
              (long long)plain.peak, (long long)ckpt.peak, double(ckpt.peak) / double(plain.peak));
  // With checkpointing the graph holds each layer's input, (B, T, C), instead of its
  // activations, plus what is outside the layers (embeddings, norm, logits, loss).
  const int64_t per_layer_input = B * T * cfg.hidden_size * 4;
  CHECK(ckpt.held < plain.held / 3);
  CHECK(ckpt.held >= cfg.num_hidden_layers * per_layer_input);
  CHECK(ckpt.peak < plain.peak * 3 / 4);
}
