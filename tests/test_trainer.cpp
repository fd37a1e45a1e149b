// The Trainer (train/trainer.hpp) beyond the pipeline test: QLoRA on a tiny Llama (NF4 base,
// LoRA on q_proj/v_proj, paged_adamw_8bit) — the loss falls, only the LoRA weights change, the
// checkpoints are peft adapters that load back — and resume_from_checkpoint, which must give
// the weights and optimizer state of an uninterrupted run bit for bit (a full finetune with
// dropout and adamw_torch, and the QLoRA run with 8-bit states).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <galvani/galvani.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/train/trainer.hpp>

#include "support/tiny_models.hpp"
#include "support/training_args.hpp"

#include "io_test_util.hpp"

using namespace galvani;
using galvani::io::testing::same_bytes;
using galvani::io::testing::scratch_dir;
namespace fs = std::filesystem;

namespace {

using testing::pattern_rows;  // rows of 24 tokens of the pattern (tests/support/tiny_models.hpp)

// The tiny GPT-2, seed 3 (the full-finetune runs).
std::unique_ptr<GPT2LMHeadModel> tiny_gpt2() {
  return std::make_unique<GPT2LMHeadModel>(testing::tiny_gpt2_config(), uint64_t(3));
}

MistralConfig tiny_llama() {
  MistralConfig c = MistralConfig::defaults("llama");
  c.vocab_size = 256;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.initializer_range = 0.2;  // a random base with some reach: LoRA on q/v can then steer it within 40 steps
  return c;
}

// The course's QLoRA set-up at toy size: NF4 with double quantization, LoRA r=32 (alpha 64,
// dropout 0.05) on q_proj and v_proj. r=32 makes q_proj's A and B and v_proj's A 4,096
// elements: 8-bit optimizer states; v_proj's B (64×32) keeps f32 states.
std::unique_ptr<CausalLM> qlora_model(LoraConfig& lc) {
  auto m = std::make_unique<MistralForCausalLM>(tiny_llama(), uint64_t(7));
  BitsAndBytesConfig bnb = BitsAndBytesConfig::qlora();
  quantize_model(*m, bnb);
  lc.r = 32;
  lc.lora_alpha = 64;
  lc.lora_dropout = 0.05;
  lc.target_modules = TargetModules::names({"q_proj", "v_proj"});
  get_peft_model(*m, lc);
  return m;
}

TrainingArguments qlora_args(const fs::path& out) {
  TrainingArguments a = testing::quick_training_args(out);
  a.num_train_epochs = 2;
  a.learning_rate = 1e-2;
  a.warmup_steps = 2;
  a.optim = "paged_adamw_8bit";
  return a;
}

std::map<std::string, Tensor> snapshot(const Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& e : m.state_dict()) out[e.name] = e.tensor.clone();
  return out;
}

}  // namespace

TEST_CASE("QLoRA on a tiny Llama: the loss falls and only the LoRA weights change", "[trainer][qlora]") {
  const fs::path out = scratch_dir("galvani_test_trainer_qlora");
  LoraConfig lc;
  auto model = qlora_model(lc);
  const auto before = snapshot(*model);
  TrainingArguments args = qlora_args(out);
  args.save_steps = 10;
  Trainer trainer(*model, args, pattern_rows(40), 0, pattern_rows(8), [&](const CausalLM& m, const fs::path& d) {
    save_adapter(m, lc, d);
  });
  const TrainResult r = trainer.train();
  REQUIRE(r.global_step == 40);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += r.log[size_t(i)].loss, last += r.log[r.log.size() - 1 - size_t(i)].loss;
  CHECK(last < 0.8 * first);
  REQUIRE(r.eval_loss.size() == 2);
  CHECK(r.eval_loss[1].second < r.eval_loss[0].second);

  // Every tensor but the LoRA A and B is byte-identical: the 4-bit weights, their quant state,
  // norms, embeddings and the head.
  size_t changed_lora = 0, base_tensors = 0;
  for (const auto& e : model->state_dict()) {
    INFO(e.name);
    if (e.name.find(".lora_") != std::string::npos) {
      changed_lora += !same_bytes(e.tensor, before.at(e.name));
      continue;
    }
    ++base_tensors;
    CHECK(same_bytes(e.tensor, before.at(e.name)));
  }
  CHECK(changed_lora == 8);  // A and B of q_proj and v_proj in 2 layers (B leaves 0 at step 1)
  CHECK(base_tensors > 20);

  // A checkpoint is a peft adapter plus the optimizer state; it loads over a fresh base and
  // gives the trained model's logits.
  const fs::path ckpt = out / "checkpoint-40";
  CHECK(fs::exists(ckpt / "adapter_config.json"));
  CHECK(fs::exists(ckpt / "adapter_model.safetensors"));
  CHECK(fs::exists(ckpt / "optimizer.safetensors"));
  const auto opt_state = io::load_safetensors(ckpt / "optimizer.safetensors");
  CHECK(opt_state.at("state.0.state1").dtype() == DType::u8);  // q_proj's A: 8-bit states
  CHECK(opt_state.at("state.1.state1").dtype() == DType::u8);  // q_proj's B
  CHECK(opt_state.at("state.3.state1").dtype() == DType::f32);  // v_proj's B: 2,048 elements
  auto fresh = std::make_unique<MistralForCausalLM>(tiny_llama(), uint64_t(7));
  quantize_model(*fresh, BitsAndBytesConfig::qlora());
  load_adapter(*fresh, ckpt);
  model->eval();
  fresh->eval();
  NoGradGuard ng;
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 5, 16, 54}, {1, 5});
  CHECK(same_bytes(model->forward(ids), fresh->forward(ids)));
}

namespace {
// What a run ends with: its weights, the optimizer state of its last checkpoint, its log.
struct RunOutcome {
  std::map<std::string, Tensor> weights;
  io::StateDict optimizer;
  std::vector<LogEntry> log;
  std::vector<std::pair<int64_t, double>> eval_loss;
};

template <class Make, class Save>
RunOutcome run(Make make, Save save, TrainingArguments args, const Trainer::Rows& rows, const Trainer::Rows& eval) {
  auto model = make();
  Trainer t(*model, args, rows, 0, eval, save);
  TrainResult r = t.train();
  RunOutcome o;
  o.weights = snapshot(*model);
  o.log = r.log;
  o.eval_loss = r.eval_loss;
  const fs::path last = Trainer::latest_checkpoint(args.output_dir);
  o.optimizer = io::load_safetensors(last / "optimizer.safetensors");
  return o;
}

void check_same(const RunOutcome& a, const RunOutcome& b) {
  REQUIRE(a.weights.size() == b.weights.size());
  for (const auto& [name, t] : a.weights) {
    INFO(name);
    CHECK(same_bytes(t, b.weights.at(name)));
  }
  REQUIRE(a.optimizer.size() == b.optimizer.size());
  for (const auto& e : a.optimizer) {
    INFO(e.name);
    CHECK(same_bytes(e.tensor, b.optimizer.at(e.name)));
  }
  REQUIRE(a.log.size() == b.log.size());
  for (size_t i = 0; i < a.log.size(); ++i) CHECK(a.log[i].loss == b.log[i].loss);
  CHECK(a.eval_loss == b.eval_loss);
}

// Train make()'s model straight through, and again with a kill and a resume from "latest"
// (a new model and a new Trainer, as a new process would): both end the same, bit for bit.
template <class Make, class Save>
void check_resume(Make make, Save save, TrainingArguments args, int64_t stop, const std::string& tag) {
  const Trainer::Rows rows = pattern_rows(22), eval = pattern_rows(4);
  args.output_dir = scratch_dir("galvani_test_trainer_straight_" + tag).string();
  const RunOutcome straight = run(make, save, args, rows, eval);

  // The interrupted run: killed while writing the checkpoint after checkpoint-`stop` (its save
  // function throws there), which leaves checkpoint-`stop` as the newest whole one.
  TrainingArguments cut = args;
  cut.output_dir = scratch_dir("galvani_test_trainer_resumed_" + tag).string();
  struct Killed {};
  try {
    auto model = make();
    Trainer killed(*model, cut, rows, 0, eval, [&](const CausalLM& m, const fs::path& d) {
      if (d.filename().string() == ".checkpoint-" + std::to_string(stop + cut.save_steps) + ".tmp") throw Killed{};
      save(m, d);
    });
    REQUIRE(killed.total_steps() > stop + cut.save_steps);
    killed.train();
    FAIL("the run was not interrupted");
  } catch (const Killed&) {
  }
  REQUIRE(fs::exists(fs::path(cut.output_dir) / ("checkpoint-" + std::to_string(stop))));
  TrainingArguments resumed = cut;
  resumed.resume_from_checkpoint = "latest";
  const RunOutcome after = run(make, save, resumed, rows, eval);
  check_same(straight, after);
}
// The full-finetune runs' save function: the model's state dict as model.safetensors.
void save_model(const CausalLM& m, const fs::path& d) {
  io::save_safetensors(d / "model.safetensors", m.state_dict(), io::Metadata{{"format", "pt"}});
}
}  // namespace

TEST_CASE("resume_from_checkpoint continues a full finetune bit for bit (dropout, adamw_torch)", "[trainer][resume]") {
  const auto make = [] { return tiny_gpt2(); };
  TrainingArguments a;
  a.num_train_epochs = 2;
  a.per_device_train_batch_size = 2;
  a.gradient_accumulation_steps = 2;
  a.learning_rate = 1e-3;
  a.weight_decay = 0.01;
  a.warmup_steps = 2;
  a.save_steps = 2;
  a.progress_bar = false;
  check_resume(make, save_model, a, 4, "full");
}

// fp16 with a loss scale that overflows now and then (2^22, doubled after 3 good updates): the
// scaler's scale and growth tracker, and the count of skipped updates the LR schedule leaves
// out, come back from trainer_state.json, so the resumed run skips and steps as the straight one.
TEST_CASE("resume_from_checkpoint continues an fp16 run bit for bit (loss scaler state, skipped updates)",
          "[trainer][resume][mixed]") {
  const auto make = [] { return tiny_gpt2(); };
  TrainingArguments a;
  a.num_train_epochs = 2;
  a.per_device_train_batch_size = 2;
  a.learning_rate = 1e-3;
  a.warmup_steps = 2;
  a.save_steps = 3;
  a.progress_bar = false;
  a.fp16 = true;
  a.grad_scaler.init_scale = std::ldexp(1.0, 22);
  a.grad_scaler.growth_interval = 3;
  check_resume(make, save_model, a, 9, "fp16");
  // The run did skip updates, before and after the checkpoint it resumed from.
  std::ifstream log(fs::temp_directory_path() / "galvani_test_trainer_resumed_fp16" / "log.jsonl");
  std::vector<int64_t> skipped;
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("skipped_overflow")) skipped.push_back(j["step"].get<int64_t>());
  }
  INFO("skipped updates: " << skipped.size());
  REQUIRE(!skipped.empty());
  CHECK(skipped.front() <= 9);
  CHECK(skipped.back() > 12);
  // The checkpoint resumed from carries state that matters: skips made and a scale changed.
  const nlohmann::json st =
      io::read_json_file(fs::temp_directory_path() / "galvani_test_trainer_resumed_fp16" / "checkpoint-9" / "trainer_state.json");
  CHECK(st["optimizer_steps_skipped"].get<int64_t>() > 0);
  CHECK(st["scaler"]["scale"].get<double>() != std::ldexp(1.0, 22));
  CHECK(st["optimizer_step_count"].get<int64_t>() == 9 - st["optimizer_steps_skipped"].get<int64_t>());
}

TEST_CASE("resume_from_checkpoint continues a QLoRA run bit for bit (adapter, 8-bit optimizer states)",
          "[trainer][resume][qlora]") {
  LoraConfig lc;
  const auto make = [&] { return qlora_model(lc); };
  const auto save = [&](const CausalLM& m, const fs::path& d) { save_adapter(m, lc, d); };
  TrainingArguments a = qlora_args("unused");
  a.save_steps = 3;
  a.eval_on_start = true;
  check_resume(make, save, a, 9, "qlora");
}

TEST_CASE("resume_from_checkpoint: a checkpoint of another run is refused, naming the setting", "[trainer][resume]") {
  const fs::path out = scratch_dir("galvani_test_trainer_mismatch");
  LoraConfig lc;
  auto model = qlora_model(lc);
  TrainingArguments a = qlora_args(out);
  a.max_steps = 2;
  a.save_steps = 2;
  const auto save = [&](const CausalLM& m, const fs::path& d) { save_adapter(m, lc, d); };
  Trainer(*model, a, pattern_rows(8), 0, {}, save).train();

  TrainingArguments b = a;
  b.resume_from_checkpoint = "latest";
  b.per_device_train_batch_size = 4;
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(),
                    Catch::Contains("train_batch_size is 2 but this run has 4"));
  b.per_device_train_batch_size = 2;
  b.optim = "adamw_torch";
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(),
                    Catch::Contains("optim is \"paged_adamw_8bit\" but this run has \"adamw_torch\""));
  b.optim = a.optim;
  b.learning_rate = a.learning_rate * 10;  // HF would keep the old rate silently
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(),
                    Catch::Contains("learning_rate is ") && Catch::Contains("but this run has"));
  b.learning_rate = a.learning_rate;
  b.warmup_steps = a.warmup_steps + 1;
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(), Catch::Contains("warmup_steps is "));
  b.warmup_steps = a.warmup_steps;
  {  // the LoRA run's checkpoint resumed by a full finetune: the method is named, not the optimizer
    auto full = std::make_unique<MistralForCausalLM>(tiny_llama(), uint64_t(7));
    TrainingArguments c = b;
    c.optim = "adamw_torch";
    CHECK_THROWS_WITH(Trainer(*full, c, pattern_rows(8), 0).train(),
                      Catch::Contains("is the checkpoint of a LoRA run") && Catch::Contains("is a full finetune"));
  }
  b.output_dir = scratch_dir("galvani_test_trainer_empty").string();
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(),
                    Catch::Contains("no checkpoint-N folder"));
  b.resume_from_checkpoint = (out / "checkpoint-2").string();
  fs::remove(out / "checkpoint-2" / "adapter_model.safetensors");
  CHECK_THROWS_WITH(Trainer(*model, b, pattern_rows(8), 0, {}, save).train(), Catch::Contains("model.safetensors"));
}

// ------------------------------------------------------------------ NaN and Inf (issue #17)

namespace {

Tensor parameter(const Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  FAIL("no parameter " << name);
  return {};
}
}  // namespace

TEST_CASE("a NaN in the weights stops the run before any weight changes, naming the update and tensor",
          "[trainer][nonfinite]") {
  auto m = tiny_gpt2();
  // One NaN in the (tied) token embedding: every logit row reads it, so the first update's
  // gradients are NaN. (Its loss is finite: the fused cross-entropy's max and exp pass over a NaN
  // logit, where torch's would return NaN — noted in issue #17; the gradient check catches it.)
  parameter(*m, "transformer.wte.weight").data<float>()[5 * 32] = std::nanf("");
  const auto before = snapshot(*m);
  Trainer t(*m, testing::quick_training_args(scratch_dir("galvani_test_trainer_nan_stop")), pattern_rows(8), 0);
  CHECK_THROWS_WITH(t.train(), Catch::Contains("update 1: ") && Catch::Contains("'transformer.wte.weight'") &&
                                   Catch::Contains("The weights were not updated") &&
                                   Catch::Contains("--on-nonfinite skip"));
  for (const auto& [name, w] : snapshot(*m)) {
    INFO(name);
    CHECK(same_bytes(w, before.at(name)));
  }
}

TEST_CASE("on_nonfinite=skip drops the updates whose loss is not finite and keeps the weights finite",
          "[trainer][nonfinite]") {
  // lr 1e30: the first update is finite but throws the weights to ~1e30, so every later forward
  // overflows. Skipping those updates must leave exactly the weights of a one-update run.
  TrainingArguments a = testing::quick_training_args(scratch_dir("galvani_test_trainer_nan_skip"));
  a.learning_rate = 1e30;
  a.on_nonfinite = "skip";
  auto m = tiny_gpt2();
  Trainer t(*m, a, pattern_rows(8), 0);
  const TrainResult r = t.train();
  CHECK(r.global_step == 4);
  int skipped = 0;
  std::ifstream log(fs::path(a.output_dir) / "log.jsonl");
  for (std::string line; std::getline(log, line);) skipped += line.find("\"skipped_nonfinite\"") != std::string::npos;
  CHECK(skipped == 3);

  TrainingArguments one = a;
  one.output_dir = scratch_dir("galvani_test_trainer_nan_one").string();
  one.max_steps = 1;
  auto ref = tiny_gpt2();
  Trainer(*ref, one, pattern_rows(8), 0).train();
  const auto want = snapshot(*ref);
  for (const auto& [name, w] : snapshot(*m)) {
    INFO(name);
    CHECK(same_bytes(w, want.at(name)));
  }
  CHECK_THROWS_WITH(Trainer(*ref, [&] { TrainingArguments b = a; b.on_nonfinite = "ignore"; return b; }(), pattern_rows(8), 0),
                    Catch::Contains("on_nonfinite is \"ignore\""));
}

TEST_CASE("first_nonfinite_grad names the first parameter whose gradient holds a NaN or an Inf", "[trainer][nonfinite]") {
  auto m = tiny_gpt2();
  const NamedTensors named = m->named_parameters();
  CHECK(first_nonfinite_grad(named).empty());  // no gradients yet
  REQUIRE(named.size() > 3);
  for (const auto& [name, p] : named) p.set_grad(Tensor::zeros(p.shape()));
  CHECK(first_nonfinite_grad(named).empty());
  named[3].second.grad().data<float>()[1] = INFINITY;
  named[2].second.grad().data<float>()[0] = std::nanf("");
  named[2].second.grad().data<float>()[2] = -INFINITY;
  CHECK(first_nonfinite_grad(named) == "the gradient of '" + named[2].first + "' (2 of " +
                                           std::to_string(named[2].second.numel()) + " values are nan/inf)");
}

// ------------------------------------------------------------------ what a kill leaves (issue #17)
// tests/kill_resume.sh kills real runs with SIGKILL; these check the pieces in-process.

TEST_CASE("GALVANI_FAULT_INJECT: unset is no fault, kill_in_save:N and kill_in_step:N parse, a typo is an error",
          "[trainer][kill]") {
  struct Restore {  // the variable as the test found it (unset in every normal run)
    ~Restore() { ::unsetenv("GALVANI_FAULT_INJECT"); }
  } restore;
  ::unsetenv("GALVANI_FAULT_INJECT");
  CHECK(detail::FaultInjection::from_env().kill_in_save == 0);
  CHECK(detail::FaultInjection::from_env().kill_in_step == 0);
  ::setenv("GALVANI_FAULT_INJECT", "kill_in_save:6", 1);
  CHECK(detail::FaultInjection::from_env().kill_in_save == 6);
  CHECK(detail::FaultInjection::from_env().kill_in_step == 0);
  ::setenv("GALVANI_FAULT_INJECT", "kill_in_step:8", 1);
  CHECK(detail::FaultInjection::from_env().kill_in_step == 8);
  for (const char* bad : {"kill_in_save", "kill_in_save:", "kill_in_save:0", "kill_in_save:6x", "kill_on_save:6"}) {
    INFO(bad);
    ::setenv("GALVANI_FAULT_INJECT", bad, 1);
    CHECK_THROWS_WITH(detail::FaultInjection::from_env(), Catch::Contains("kill_in_save:N or kill_in_step:N"));
  }
}

TEST_CASE("a save replaces an older checkpoint-N whole, and train() removes what a killed save left",
          "[trainer][kill]") {
  const fs::path out = scratch_dir("galvani_test_trainer_stale");
  // A killed save's temporary folder, a killed replace's .old, a folder that only looks like one,
  // and a checkpoint-2 of an earlier run, which this run's step 2 must replace.
  for (const char* d : {".checkpoint-4.tmp", ".checkpoint-2.old", ".checkpoint-x.tmp", "checkpoint-2"}) {
    fs::create_directories(out / d);
    std::ofstream(out / d / "stale.txt") << "from an earlier run";
  }
  TrainingArguments a = testing::quick_training_args(out);
  a.max_steps = 4;
  a.save_steps = 2;
  a.save_total_limit = 0;  // keep both, to see checkpoint-2 replaced
  auto m = tiny_gpt2();
  Trainer(*m, a, pattern_rows(8), 0, {}, [](const CausalLM& model, const fs::path& d) {
    io::StateDict sd = model.state_dict();
    io::save_safetensors(d / "model.safetensors", sd);
  }).train();
  CHECK(Trainer::stale_checkpoint_folders(out).empty());
  CHECK(fs::exists(out / ".checkpoint-x.tmp" / "stale.txt"));  // not the Trainer's: left alone
  for (const char* d : {"checkpoint-2", "checkpoint-4"}) {
    INFO(d);
    CHECK(fs::exists(out / d / "model.safetensors"));
    CHECK(fs::exists(out / d / "trainer_state.json"));
    CHECK_FALSE(fs::exists(out / d / "stale.txt"));
  }

  // save_total_limit prunes by a rename out of sight: nothing hidden stays behind.
  a.output_dir = scratch_dir("galvani_test_trainer_prune").string();
  a.save_total_limit = 1;
  a.save_steps = 1;
  auto m2 = tiny_gpt2();
  Trainer(*m2, a, pattern_rows(8), 0, {}, [](const CausalLM& model, const fs::path& d) {
    io::StateDict sd = model.state_dict();
    io::save_safetensors(d / "model.safetensors", sd);
  }).train();
  const auto kept = Trainer::checkpoint_folders(a.output_dir);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].first == 4);
  CHECK(Trainer::stale_checkpoint_folders(a.output_dir).empty());
}

TEST_CASE("TrainingArguments are checked as torch's AdamW and HF's Trainer check them, naming the field",
          "[trainer][errors]") {
  const TrainingArguments ok = testing::quick_training_args("unused");
  REQUIRE_NOTHROW(ok.validate());
  const auto fails = [&](auto change, const std::string& says) {
    TrainingArguments a = ok;
    change(a);
    CHECK_THROWS_WITH(a.validate(), Catch::Contains(says));
  };
  fails([](TrainingArguments& a) { a.learning_rate = -1; }, "learning_rate is -1; it must be a finite number >= 0");
  fails([](TrainingArguments& a) { a.learning_rate = std::nan(""); }, "learning_rate is nan");
  fails([](TrainingArguments& a) { a.weight_decay = -0.1; }, "weight_decay is -0.1");
  fails([](TrainingArguments& a) { a.adam_epsilon = std::numeric_limits<double>::infinity(); }, "adam_epsilon is inf");
  fails([](TrainingArguments& a) { a.adam_beta2 = 1.0; }, "adam_beta2 is 1; it must be in [0, 1)");
  fails([](TrainingArguments& a) { a.adam_beta1 = -0.5; }, "adam_beta1 is -0.5");
  fails([](TrainingArguments& a) { a.num_train_epochs = 0; }, "num_train_epochs is 0");
  fails([](TrainingArguments& a) { a.max_grad_norm = std::nan(""); }, "max_grad_norm is nan");
  fails([](TrainingArguments& a) { a.warmup_steps = -1; }, "warmup_steps is -1; it must be >= 0");
  fails([](TrainingArguments& a) { a.save_total_limit = -2; }, "save_total_limit is -2");
  fails([](TrainingArguments& a) { a.on_nonfinite = "ignore"; }, "on_nonfinite is \"ignore\"");
  TrainingArguments by_steps = ok;  // max_steps sets the length: the epoch count is not used
  by_steps.num_train_epochs = 0, by_steps.max_steps = 3, by_steps.max_grad_norm = 0;  // 0: no clipping
  CHECK_NOTHROW(by_steps.validate());
  // The Trainer refuses them before touching the model.
  auto model = tiny_gpt2();
  TrainingArguments bad = ok;
  bad.learning_rate = -1;
  CHECK_THROWS_WITH(Trainer(*model, bad, pattern_rows(40), 0), Catch::Contains("learning_rate is -1"));
}

TEST_CASE("the Trainer warns when the warm-up lasts the whole run", "[trainer]") {
  auto model = tiny_gpt2();
  TrainingArguments a = testing::quick_training_args("unused");
  a.max_steps = 5;
  a.warmup_steps = 10;
  const std::vector<std::string> w = Trainer(*model, a, pattern_rows(40), 0).warnings();
  REQUIRE(w.size() == 1);
  CHECK_THAT(w[0], Catch::Contains("warmup_steps 10 >= the run's 5 updates") && Catch::Contains("e.g. to 1"));
  a.warmup_steps = 5;  // as long as the run: the rate still never gets there
  CHECK(Trainer(*model, a, pattern_rows(40), 0).warnings().size() == 1);
  a.warmup_steps = 4;
  CHECK(Trainer(*model, a, pattern_rows(40), 0).warnings().empty());
  a.warmup_steps = 10, a.lr_scheduler_type = "constant";  // no warm-up in that schedule
  CHECK(Trainer(*model, a, pattern_rows(40), 0).warnings().empty());
}
