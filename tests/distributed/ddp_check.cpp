// tests/distributed/ddp_check.cpp — data parallelism checked under `mpirun -np W` (CTests in
// tests/CMakeLists.txt, built when CMake finds MPI). Exit status 0 means the check held on
// every rank.
//
//   ddp_check equivalence   W ranks with B rows each give, update for update, the losses and
//                           final weights of one process with W·B rows (a tiny GPT-2: a full
//                           finetune, the same with 2 accumulation steps, LoRA on c_attn,
//                           and with 2 KB buckets started during backward under gradient
//                           checkpointing), within 1e-5 (summation order). Without the
//                           gradient all-reduce the weights differ by ~5e-3 (checked by hand).
//                           Every case also checks the weights are bit-identical on every rank.
//                           fp16 autocast with dynamic loss scaling (first scale 2^22, so the
//                           first updates overflow): the ranks skip and step alike (identical
//                           weights, ≥ 1 skip), and the losses stay within 1% of one process —
//                           not 1e-5: f16-rounded gradients of a 2-row mean are not those of a
//                           4-row mean, so the scaler may skip one update more or fewer, and Adam
//                           turns rounding differences of tiny gradients into weight differences
//                           up to the learning rate.
//                           Then the GradientReducer alone: buckets all-reduced while backward
//                           runs (overlap) give gradients bit-identical to all after backward,
//                           and a parameter marked ready twice in one backward is an error.
//   ddp_check hang          rank 1 stops answering; rank 0's all_reduce gives up after the
//                           group's timeout (2 s here) with an error, and the job ends
//   ddp_check die           rank 1 exits before a collective; the job ends (mpirun, or the timeout)
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <galvani/galvani.hpp>
#include <galvani/train/distributed.hpp>

#include "../support/tiny_models.hpp"

using namespace galvani;
namespace fs = std::filesystem;

namespace {

// 32 rows of 8..23 tokens of the pattern (tests/support/tiny_models.hpp): uneven lengths, so
// the ranks pad differently from the single process.
Trainer::Rows rows() {
  Trainer::Rows out;
  for (int64_t r = 0; r < 32; ++r) out.push_back(testing::pattern_row(r, 8 + r % 16));
  return out;
}

// The tiny GPT-2 without dropout (its masks would differ between the layouts). Each rank builds
// it from its own seed: the Trainer's broadcast of rank 0's weights is what makes them start alike.
std::unique_ptr<GPT2LMHeadModel> tiny_gpt2(uint64_t seed) {
  GPT2Config c = testing::tiny_gpt2_config();
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0;
  return std::make_unique<GPT2LMHeadModel>(c, seed);
}

struct Run {
  std::vector<double> losses;
  std::vector<bool> skipped;  // fp16: the loss scaler skipped that update
  std::map<std::string, Tensor> weights;
};

struct Case {
  bool lora;
  int64_t batch, accum;
  const char* what;
  double bucket_cap_mb = 25;
  bool checkpointing = false;
  bool overlap = false;
  bool fp16 = false;
};

Run train(const Case& c, const distributed::ProcessGroup& group, int64_t batch, uint64_t seed, const fs::path& out) {
  const bool lora = c.lora;
  auto model = tiny_gpt2(seed);
  if (lora) {
    LoraConfig lc;
    lc.r = 4;
    lc.lora_alpha = 8;
    lc.lora_dropout = 0;
    lc.target_modules = TargetModules::names({"c_attn"});
    get_peft_model(*model, lc);
    if (group.world_size() > 1 && group.rank() != 0) {  // LoRA's A starts random: differ per rank
      for (auto& [name, p] : model->named_parameters())
        if (p.requires_grad()) p.data<float>()[0] += 1.0f;
    }
  }
  TrainingArguments a;
  a.output_dir = out.string();
  a.max_steps = 8;  // 32 rows / (2 ranks · 2 rows) = 8 updates: one epoch
  a.per_device_train_batch_size = batch;
  a.gradient_accumulation_steps = c.accum;
  a.ddp_bucket_cap_mb = c.bucket_cap_mb;
  a.gradient_checkpointing = c.checkpointing;
  a.ddp_overlap = c.overlap;
  a.fp16 = c.fp16;
  a.grad_scaler.init_scale = 4194304.0;  // 2^22: the first updates overflow and are skipped, in both layouts alike
  a.learning_rate = lora ? 1e-2 : 1e-3;
  a.warmup_steps = 2;
  a.save_steps = 0;
  a.progress_bar = false;
  a.eval_on_start = false;
  a.optim = lora ? "paged_adamw_8bit" : "adamw_torch";
  Trainer t(*model, a, rows(), 0);
  t.set_process_group(group);
  TrainResult r = t.train();
  Run run;
  for (const LogEntry& e : r.log) {
    run.losses.push_back(e.loss);
    run.skipped.push_back(e.skipped_overflow);
  }
  for (const auto& e : model->state_dict()) run.weights[e.name] = e.tensor.to(DType::f32).contiguous();
  return run;
}

int overlap_is_exact(const distributed::ProcessGroup& group);
int ready_twice_is_an_error(const distributed::ProcessGroup& group);

int equivalence(const distributed::ProcessGroup& group) {
  int failures = 0;
  const int W = group.world_size();
  for (const Case& c : {Case{false, 2, 1, "full finetune (adamw_torch)"},
                        Case{false, 1, 2, "full finetune, batch 1 x 2 accumulation steps (reduced once per update)"},
                        Case{true, 2, 1, "LoRA (c_attn, r 4, paged_adamw_8bit)"},
                        Case{false, 2, 1, "full finetune, 2 KB buckets started in backward, gradient checkpointing",
                             0.002, true, true},
                        Case{false, 2, 1, "full finetune, fp16 autocast with dynamic loss scaling", 25, false, false,
                             true}}) {
    const char* what = c.what;
    const fs::path scratch = fs::temp_directory_path() / ("galvani_ddp_check_" + std::to_string(::getpid()));
    Run ddp = train(c, group, c.batch, 3 + uint64_t(group.rank()), scratch / "ddp");
    // Every rank must end with rank 0's weights, bit for bit: the same updates, the same skips.
    double differing = 0;
    for (auto& [name, w] : ddp.weights) {
      Tensor r0 = w.clone();
      group.broadcast(r0, 0);
      differing += std::memcmp(r0.data<float>(), w.data<float>(), size_t(w.numel()) * 4) != 0;
    }
    group.all_reduce(&differing, 1);
    if (group.rank() != 0) continue;
    const distributed::ProcessGroup single = distributed::ProcessGroup::single();
    Run one = train(c, single, c.batch * W, 3, scratch / "one");
    fs::remove_all(scratch);
    double worst_loss = 0, worst_weight = 0;
    std::string worst_name;
    if (ddp.losses.size() != one.losses.size() || ddp.losses.empty()) {
      std::printf("FAIL %s: %zu logged updates with %d ranks, %zu with one process\n", what, ddp.losses.size(), W,
                  one.losses.size());
      ++failures;
      continue;
    }
    for (size_t i = 0; i < ddp.losses.size(); ++i)
      worst_loss = std::max(worst_loss, std::abs(ddp.losses[i] - one.losses[i]) / std::max(1.0, std::abs(one.losses[i])));
    for (auto& [name, w] : one.weights) {
      const Tensor& d = ddp.weights.at(name);
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double diff = std::abs(double(d.data<float>()[i]) - double(w.data<float>()[i]));
        if (diff > worst_weight) {
          worst_weight = diff;
          worst_name = name;
        }
      }
    }
    // fp16: a rank's gradients are those of its own rows' mean, rounded to f16, so near the
    // overflow threshold the scaler may skip an update the single process makes (DDP's rule:
    // any rank overflows, all skip) — and Adam turns f16-rounding differences of tiny
    // gradients into weight differences up to the learning rate. So against one process the
    // check is loose (losses within 1%); across ranks it is exact (the weights above).
    const size_t skips = size_t(std::count(ddp.skipped.begin(), ddp.skipped.end(), true)),
                 skips_one = size_t(std::count(one.skipped.begin(), one.skipped.end(), true));
    const std::string fp16_note = !c.fp16 ? ""
                                          : "; " + std::to_string(skips) + " overflow skips (one process: " +
                                                std::to_string(skips_one) + ")";
    const bool ok = differing == 0 && (c.fp16 ? worst_loss <= 1e-2 && skips > 0
                                              : worst_loss <= 1e-5 && worst_weight <= 1e-5);
    std::printf("%s %s: %d ranks x batch %lld against 1 process x batch %lld, %zu updates: losses %.4f -> %.4f, "
                "largest loss difference %.2e (relative), largest weight difference %.2e (%s); weights %s on every "
                "rank%s\n",
                ok ? "ok" : "FAIL", what, W, (long long)c.batch, (long long)(c.batch * W), ddp.losses.size(), one.losses.front(), one.losses.back(), worst_loss,
                worst_weight, worst_name.c_str(), differing == 0 ? "bit-identical" : "DIFFERENT", fp16_note.c_str());
    failures += !ok;
  }
  failures += overlap_is_exact(group);
  failures += ready_twice_is_an_error(group);
  return failures == 0 ? 0 : 1;
}

// One backward of the tiny GPT-2 on this rank's rows (gradient checkpointing or not), its
// gradients averaged by a reducer with 2 KB buckets, overlapped or not: the gradients (in
// parameter order, f32).
std::vector<std::vector<float>> reduced_gradients(const distributed::ProcessGroup& group, bool overlap,
                                                  bool checkpointing, size_t* started, size_t* buckets) {
  auto model = tiny_gpt2(3);  // the same weights on every rank
  if (checkpointing) model->gradient_checkpointing_enable();
  std::vector<Tensor> params = model->trainable_parameters();
  distributed::GradientReducer reducer(group, params, 0.002, overlap);
  Trainer::Rows all = rows();
  const Trainer::Rows mine = {all[size_t(group.rank())], all[size_t(group.rank() + 2)]};
  Batch batch = collate_causal_lm(mine, CollatorOptions{0});
  BatchTensors t = to_tensors(batch);
  Tensor loss = causal_lm_loss(model->forward(t.input_ids, t.attention_mask), t.labels, Reduction::mean);
  reducer.prepare_for_backward();
  loss.backward();
  reducer.all_reduce_gradients();
  *started = reducer.buckets_started_in_backward();
  *buckets = reducer.bucket_count();
  std::vector<std::vector<float>> out;
  for (const Tensor& p : params) {
    std::vector<float> v;
    if (p.grad().defined()) {
      const Tensor g = p.grad().to(DType::f32).contiguous();
      v.assign(g.data<float>(), g.data<float>() + g.numel());
    }
    out.push_back(std::move(v));
  }
  return out;
}

int overlap_is_exact(const distributed::ProcessGroup& group) {
  int failures = 0;
  for (const bool checkpointing : {false, true}) {
    size_t started = 0, buckets = 0, started_sync = 0, buckets_sync = 0;
    const auto overlapped = reduced_gradients(group, true, checkpointing, &started, &buckets);
    const auto after = reduced_gradients(group, false, checkpointing, &started_sync, &buckets_sync);
    const bool same = overlapped == after;
    const bool ok = same && buckets > 1 && started > 0 && started_sync == 0;
    if (group.rank() == 0)
      std::printf("%s GradientReducer overlap%s: %zu buckets, %zu of them handed to the communication thread while "
                  "backward ran; gradients %s those reduced after backward\n",
                  ok ? "ok" : "FAIL", checkpointing ? " under gradient checkpointing" : "", buckets, started,
                  same ? "bit-identical to" : "DIFFERENT from");
    failures += !ok;
  }
  return failures == 0 ? 0 : 1;
}

// A parameter used inside a checkpointed segment and outside it reaches its last gradient twice
// (the recompute is a backward of its own): with overlap, an error naming it, as DDP's
// "marked ready twice", on every rank — not silently stale gradients.
int ready_twice_is_an_error(const distributed::ProcessGroup& group) {
  Tensor w = Tensor::from_vector<float>({1, 2, 3}).requires_grad_();
  w.set_name("shared.weight");
  Tensor x = Tensor::from_vector<float>({1, 1, 1}).requires_grad_();
  distributed::GradientReducer reducer(group, {w, x}, 25, true);
  CheckpointOptions opt;
  opt.params = {w};
  Tensor inside = checkpoint([&](const std::vector<Tensor>& in) { return in[0] * w; }, {x}, opt);
  Tensor loss = sum(inside + w * 3.0);
  reducer.prepare_for_backward();
  loss.backward();
  std::string error;
  try {
    reducer.all_reduce_gradients();
  } catch (const Error& e) {
    error = e.what();
  }
  const bool ok = error.find("'shared.weight' got its last gradient twice") != std::string::npos;
  if (group.rank() == 0)
    std::printf("%s a parameter inside and outside a checkpointed segment, overlapped: %s\n", ok ? "ok" : "FAIL",
                error.empty() ? "no error" : error.c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "equivalence" && mode != "hang" && mode != "die") {
    std::fprintf(stderr, "usage: tools/launch.sh -n 2 build/tests/ddp_check equivalence|hang|die\n");
    return 2;
  }
  try {
    const distributed::ProcessGroup& group = distributed::init_process_group("mpi", mode == "equivalence" ? 600 : 2);
    if (group.world_size() < 2) {
      std::fprintf(stderr, "ddp_check: run me as 2 or more ranks: tools/launch.sh -n 2 build/tests/ddp_check MODE\n");
      return 2;
    }
    if (mode == "equivalence") return equivalence(group);
    if (group.rank() == 1) {
      if (mode == "die") ::_exit(7);
      std::this_thread::sleep_for(std::chrono::seconds(60));  // hangs: never joins the all_reduce
      return 0;
    }
    double x = 1;
    group.all_reduce(&x, 1);
    std::printf("unexpected: the all_reduce returned\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_check: %s\n", e.what());
    return 1;
  }
}
