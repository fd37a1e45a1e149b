// train/trainer.hpp — TrainingArguments and a Trainer with Hugging Face semantics.
//
// One optimizer update ("global step") is:
//   for each of gradient_accumulation_steps micro-batches:
//       collate (pad with EOS, labels −100 on pads) → forward → loss → backward
//   clip the global gradient norm → lr ← schedule(step) → optimizer step → zero grads
// The loss of an update is Σ NLL over the update's predicted tokens / their
// count (transformers' num_items_in_batch), so accumulating 2×1 rows gives the
// same gradient as one batch of 2. Rows are shuffled each epoch from the seed.
// The optimizer is chosen by its Hugging Face name (args.optim: adamw_torch, adamw_hf,
// adamw_8bit, paged_adamw_8bit, paged_adamw_32bit — optim/bnb_adamw.hpp).
//
// Checkpoints. output_dir/checkpoint-N holds what the save function writes (the model, or a
// peft adapter for a LoRA run), plus
//   optimizer.safetensors   the optimizer's state (Optimizer::named_state; 8-bit codes as U8),
//                           galvani's stand-in for the Trainer's pickled optimizer.pt
//   trainer_state.json      global_step, epoch, log_history (train and eval entries), the
//                           batch settings, and rng_state: the dropout generator's seed and counter
// written to a temporary folder and renamed into place, so an interrupted run never leaves a
// half-written checkpoint-N behind. args.resume_from_checkpoint ("latest" or a folder)
// continues such a run: weights, optimizer state, step, log and dropout stream are restored,
// and the data order (a permutation per epoch from the seed) is replayed up to the step, so a
// resumed run makes the same updates an uninterrupted one makes. The LR schedule is a function
// of the step and needs no state. Every file of a checkpoint, the folder and its parent are
// fsync'ed before and after the rename, so a power cut cannot leave a renamed but empty file.
// Folders leave the checkpoint-N namespace by a rename too: an older checkpoint-N being replaced,
// or one pruned by save_total_limit, is first renamed to .checkpoint-N.old and deleted there, so
// no deletion in progress is ever visible as a checkpoint. A run killed mid-save leaves only a
// hidden .checkpoint-N.tmp (or .old), which "latest" never picks and the next train() removes.
//
// Fault injection (a test hook). GALVANI_FAULT_INJECT, read once when a Trainer is made, makes
// the process SIGKILL itself at one place, so tests/kill_resume.sh can check that a run killed
// there and resumed from "latest" ends bit for bit where an uninterrupted run does:
//   kill_in_save:N   while checkpoint-N is written: its weights and optimizer.safetensors are
//                    in .checkpoint-N.tmp, trainer_state.json is not, nothing is renamed
//   kill_in_step:N   in the middle of update N's optimizer step: the first half of the
//                    trainable parameters (and their optimizer state) updated, the rest not
// Unset, as in every real run, it costs one getenv per Trainer. See detail::FaultInjection.
//
// Non-finite values. A NaN or Inf in an update's loss or gradients (seen in the gradient norm
// the update computes anyway, so the check costs nothing) never reaches the weights: with
// args.on_nonfinite = "stop" (the default) the run ends with a galvani::Error naming the step
// and the loss or the first parameter whose gradient is at fault; with "skip" that update is
// dropped (gradients zeroed, no optimizer step; the step still counts in global_step, as a step
// the fp16 loss scaler skips does) and logged as {"step", "skipped_nonfinite"}.
//
// Mixed precision (HF's bf16=True / fp16=True). The forward and the loss of every micro-batch,
// and the evaluation, run under an AutocastGuard (core/autocast.hpp): bf16 (or f16) linear,
// attention and 4-bit products, f32 everything else; the weights, their gradients and the
// optimizer state stay f32. fp16 adds torch's GradScaler (optim/grad_scaler.hpp): the loss is
// scaled before backward, the gradients unscaled before clipping, and an update whose gradients
// overflowed is skipped — no optimizer step and, as in HF, no LR-scheduler step (the schedule
// goes by the updates actually made) — and logged as HF logs it (its loss in the window, its lr,
// a non-finite grad_norm) with "skipped_overflow": true and the new "loss_scale"; the scale, its
// growth tracker and the skip count are saved in trainer_state.json and restored on resume. An
// overflow at a scale of 1 or less is not the scaler's to cure: on_nonfinite handles it (stop,
// by default, naming the first non-finite gradient).
// (accelerate turns fp16 off on a CPU — no autocast, no scaler — so HF's CPU run is f32; galvani
// runs what the course's GPU run does.)
//
// Data parallelism (train/distributed.hpp). Launched by `mpirun -np W` with init_process_group
// called first, every rank runs the same Trainer, as torch DDP under the Hugging Face Trainer:
// rank 0's weights are broadcast at the start; each epoch's order is DistributedSampler's
// (every rank its slice, per_device_train_batch_size rows per micro-batch); an update's
// predicted tokens are counted over all ranks (HF's average_tokens_across_devices), so its loss
// and, once the gradients are averaged (GradientReducer, after the update's last micro-batch:
// accumulation steps reduce nothing, as under no_sync), its gradient are those of one process
// taking the W·B rows; the optimizer step is then the same everywhere. Only rank 0 writes
// log.jsonl, the progress bar, checkpoints and loss.svg, and evaluates.
#pragma once
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../core/memory.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../models/load.hpp"
#include "../models/peft.hpp"
#include "../data/batch_tensors.hpp"
#include "../data/collator.hpp"
#include "../data/rng.hpp"
#include "../data/svg_plot.hpp"
#include "../ops/elementwise.hpp"
#include "../eval/perplexity.hpp"
#include "../models/causal_lm.hpp"
#include "../optim/adamw.hpp"
#include "../optim/bnb_adamw.hpp"
#include "../optim/clip_grad.hpp"
#include "../optim/grad_scaler.hpp"
#include "../optim/lr_schedule.hpp"
#include "distributed.hpp"
#include "progress.hpp"

namespace galvani {

// The subset of transformers.TrainingArguments galvani implements, with HF's
// defaults except where the course sets its own (noted).
struct TrainingArguments {
  std::string output_dir = "runs/train";
  double num_train_epochs = 2;               // course (HF: 3)
  int64_t max_steps = -1;                    // > 0 overrides epochs
  int64_t per_device_train_batch_size = 2;   // course (HF: 8)
  int64_t gradient_accumulation_steps = 1;
  double learning_rate = 2e-5;               // course (HF: 5e-5)
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;
  std::string lr_scheduler_type = "linear";
  int64_t warmup_steps = 200;                // course (HF: 0)
  int64_t logging_steps = 1;                 // course
  int64_t save_steps = 200;                  // course (HF: 500); 0 disables
  int64_t save_total_limit = 0;              // keep the newest N checkpoints; 0 keeps all (HF: None)
  uint64_t seed = 42;
  std::string optim = "adamw_torch";         // adamw_hf (the course's CPU run), adamw_8bit, paged_adamw_8bit
                                             // (the course's QLoRA run), paged_adamw_32bit
  std::string resume_from_checkpoint;        // "", "latest" (the newest output_dir/checkpoint-N) or a folder
  bool gradient_checkpointing = false;       // recompute each decoder layer in backward (model.gradient_checkpointing_enable())
  int64_t max_length = 0;                    // truncate rows to this many tokens (0: the model's context)
  bool eval_on_start = true;                 // evaluate the test rows before the first update too
  bool progress_bar = true;
  std::string on_nonfinite = "stop";         // a NaN/Inf loss or gradient: "stop" (an error) or "skip" the update
  double ddp_bucket_cap_mb = 25;             // data parallel: gradient bucket size, MB of f32 (HF, torch DDP: 25)
  bool bf16 = false;                         // mixed precision: autocast to bf16 (HF's bf16=True)
  bool fp16 = false;                         // mixed precision: autocast to f16 + dynamic loss scaling (the course's
                                             // fp16=True; see the header for HF on a CPU)
  GradScalerOptions grad_scaler;             // fp16's loss scaler: torch's defaults (accelerate's GradScalerKwargs)
  bool ddp_overlap = false;                  // data parallel: all-reduce buckets while backward runs, as torch
                                             // DDP does. Off by default: on the MPI backend it was slower with
                                             // no spare core (GradientReducer). galvani's, not HF's

  // The checks torch.optim.AdamW's constructor makes ("Invalid learning rate: -1", …) and those
  // HF's TrainingArguments needs to make sense, each naming the field. The Trainer calls it.
  // Error: learning_rate, weight_decay or adam_epsilon negative or not finite; an Adam beta
  // outside [0, 1); num_train_epochs not finite or ≤ 0 when max_steps does not set the length;
  // max_grad_norm NaN (≤ 0 turns clipping off, as in HF); warmup_steps, logging_steps,
  // save_steps, save_total_limit or max_length negative; on_nonfinite not stop or skip;
  // ddp_bucket_cap_mb not a finite number > 0; fp16 and bf16 both set; fp16 with grad_scaler options
  // GradScaler refuses.
  void validate() const {
    const auto finite_nonneg = [](double v, const char* name, const char* what) {
      GALVANI_CHECK(std::isfinite(v) && v >= 0, "TrainingArguments: ", name, " is ", v, "; ", what);
    };
    finite_nonneg(learning_rate, "learning_rate", "it must be a finite number >= 0 (torch.optim.AdamW: Invalid learning rate)");
    finite_nonneg(weight_decay, "weight_decay", "it must be a finite number >= 0 (torch.optim.AdamW: Invalid weight_decay value)");
    finite_nonneg(adam_epsilon, "adam_epsilon", "it must be a finite number >= 0 (torch.optim.AdamW: Invalid epsilon value)");
    for (const auto& [v, name] : {std::pair{adam_beta1, "adam_beta1"}, std::pair{adam_beta2, "adam_beta2"}})
      GALVANI_CHECK(v >= 0 && v < 1, "TrainingArguments: ", name, " is ", v,
                    "; it must be in [0, 1) (torch.optim.AdamW: Invalid beta parameter)");
    GALVANI_CHECK(max_steps > 0 || (std::isfinite(num_train_epochs) && num_train_epochs > 0),
                  "TrainingArguments: num_train_epochs is ", num_train_epochs,
                  "; it must be a finite number > 0, or set max_steps > 0 to fix the run's length");
    GALVANI_CHECK(!std::isnan(max_grad_norm), "TrainingArguments: max_grad_norm is nan; use a number (<= 0: no clipping)");
    for (const auto& [v, name] : {std::pair{warmup_steps, "warmup_steps"}, std::pair{logging_steps, "logging_steps"},
                                  std::pair{save_steps, "save_steps"}, std::pair{save_total_limit, "save_total_limit"},
                                  std::pair{max_length, "max_length"}})
      GALVANI_CHECK(v >= 0, "TrainingArguments: ", name, " is ", v, "; it must be >= 0");
    GALVANI_CHECK(std::isfinite(ddp_bucket_cap_mb) && ddp_bucket_cap_mb > 0, "TrainingArguments: ddp_bucket_cap_mb is ",
                  ddp_bucket_cap_mb, "; it must be a finite number > 0 (MB per gradient bucket; torch's default 25)");
    GALVANI_CHECK(!(fp16 && bf16), "TrainingArguments: fp16 and bf16 are both set; at most one of them can be "
                  "(transformers: At most one of fp16 and bf16 can be True)");
    if (fp16) GradScaler check(grad_scaler);  // its constructor names a bad option
    GALVANI_CHECK(on_nonfinite == "stop" || on_nonfinite == "skip", "Trainer: on_nonfinite is \"", on_nonfinite,
                  "\"; use \"stop\" or \"skip\"");
  }
};

struct LogEntry {
  int64_t step = 0;
  double epoch = 0, loss = 0, learning_rate = 0, grad_norm = 0;
  double tokens_per_second = 0, elapsed = 0;
  int64_t tokens = 0;  // B·T input tokens processed in this update (padding included; all ranks)
  double all_reduce_seconds = 0;  // time in the gradient all-reduce (data parallel runs; logged when > 0)
  double all_reduce_wait_seconds = 0;  // the update's time in the reducer after backward: packing, waiting,
                                       // unpacking (what an overlap did not hide)
  bool skipped_overflow = false;  // fp16: the loss scaler skipped this update (logged with the new loss_scale)
  double loss_scale = 0;
  nlohmann::json to_json() const {
    nlohmann::json j = {{"step", step}, {"epoch", epoch}, {"loss", loss}, {"learning_rate", learning_rate},
                        {"grad_norm", grad_norm}, {"tokens_per_second", tokens_per_second}, {"elapsed", elapsed},
                        {"tokens", tokens}};
    if (all_reduce_seconds > 0) {
      j["all_reduce_seconds"] = all_reduce_seconds;
      j["all_reduce_wait_seconds"] = all_reduce_wait_seconds;
    }
    if (skipped_overflow) {
      j["skipped_overflow"] = true;
      j["loss_scale"] = loss_scale;
    }
    return j;
  }
};

struct TrainResult {
  int64_t global_step = 0;
  double final_loss = 0;
  double seconds = 0;
  std::vector<LogEntry> log;
  std::vector<std::pair<int64_t, double>> eval_loss;  // (step, mean eval NLL) after each epoch
};

// The first of `named` (named_parameters order) whose gradient holds a NaN or an Inf, as
// "the gradient of 'NAME' (N of M values are nan/inf)", or "" when every gradient is finite.
inline std::string first_nonfinite_grad(const NamedTensors& named) {
  for (const auto& [name, p] : named) {
    if (!p.requires_grad() || !p.grad().defined()) continue;
    const Tensor g = p.grad().contiguous();
    int64_t bad = 0;
    dispatch("first_nonfinite_grad", {{"grad", g}}, FloatTypes{g.dtype()}, [&]<class T>() {
      const T* d = g.data<T>();
      for (int64_t i = 0; i < g.numel(); ++i) bad += !std::isfinite(double(d[i]));
    });
    if (bad) return galvani::detail::cat("the gradient of '", name, "' (", bad, " of ", g.numel(), " values are nan/inf)");
  }
  return "";
}

namespace detail {
// fsync a file or a folder (O_DIRECTORY), so what was written survives a power cut. Errors:
// a path that cannot be opened or synced, named.
inline void fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  GALVANI_CHECK(fd >= 0, "fsync: cannot open ", p.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  GALVANI_CHECK(rc == 0, "fsync: failed on ", p.string());
}

// GALVANI_FAULT_INJECT (the header comment): where this process kills itself, or nowhere. Only
// tests set it; a value that is not kill_in_save:N or kill_in_step:N is an error, so a typo in a
// test cannot pass as a run that was never killed.
struct FaultInjection {
  int64_t kill_in_save = 0;  // SIGKILL while checkpoint-N is written (0: never)
  int64_t kill_in_step = 0;  // SIGKILL in the middle of update N (0: never)

  static FaultInjection from_env() {
    FaultInjection f;
    const char* env = std::getenv("GALVANI_FAULT_INJECT");
    if (!env || !*env) return f;
    const std::string v = env;
    const size_t colon = v.find(':');
    const std::string where = v.substr(0, colon);
    char* end = nullptr;
    const long long step = colon == std::string::npos ? 0 : std::strtoll(v.c_str() + colon + 1, &end, 10);
    GALVANI_CHECK(step > 0 && end && *end == 0 && (where == "kill_in_save" || where == "kill_in_step"),
                  "GALVANI_FAULT_INJECT is \"", v, "\"; this test hook takes kill_in_save:N or kill_in_step:N (N > 0)");
    (where == "kill_in_save" ? f.kill_in_save : f.kill_in_step) = step;
    return f;
  }
};

// Die as the OOM killer or a power cut would: SIGKILL, no destructors, no buffers flushed.
[[noreturn]] inline void fault_kill(const std::string& where) {
  std::fprintf(stderr, "\nGALVANI_FAULT_INJECT: SIGKILL %s\n", where.c_str());
  std::fflush(stderr);
  std::raise(SIGKILL);
  std::abort();  // not reached: SIGKILL cannot be caught
}

// kill_in_step: the optimizer skips a parameter without a gradient, so dropping the gradients of
// the second half of `params` makes its step update the first half only — weights and state
// half new, half old, as a kill inside the update loop leaves them — and then the process dies.
[[noreturn]] inline void fault_kill_mid_update(Optimizer& opt, const std::vector<Tensor>& params, int64_t update) {
  for (size_t i = params.size() / 2; i < params.size(); ++i) params[i].zero_grad();
  opt.step();
  fault_kill(galvani::detail::cat("in update ", update, ", after its optimizer step updated ", params.size() / 2,
                                  " of ", params.size(), " parameters"));
}
}  // namespace detail

class Trainer {
 public:
  using Rows = std::vector<std::vector<int32_t>>;
  // Writes a model into a folder (save_pretrained); the Trainer adds the
  // temporary-folder-and-rename around it.
  using SaveFn = std::function<void(const CausalLM&, const std::filesystem::path&)>;
  // Reads a checkpoint's weights back into the model (resume); load_checkpoint_weights by default.
  using LoadFn = std::function<void(CausalLM&, const std::filesystem::path&)>;

  Trainer(CausalLM& model, TrainingArguments args, Rows train_rows, int64_t pad_id, Rows eval_rows = {},
          SaveFn save = nullptr)
      : model_(model), args_(std::move(args)), train_(std::move(train_rows)), eval_(std::move(eval_rows)),
        pad_id_(pad_id), save_(std::move(save)) {
    GALVANI_CHECK(!train_.empty(), "Trainer: the training split has no rows");
    GALVANI_CHECK(args_.per_device_train_batch_size > 0 && args_.gradient_accumulation_steps > 0,
                  "Trainer: batch size and gradient_accumulation_steps must be positive");
    args_.validate();
    const int64_t limit = args_.max_length > 0 ? args_.max_length : model_.context_length();
    for (auto& r : train_)
      if (int64_t(r.size()) > limit) { r.resize(size_t(limit)); ++truncated_; }
    for (auto& r : eval_)
      if (int64_t(r.size()) > limit) r.resize(size_t(limit));
  }

  // Micro-batches per epoch on each rank: DistributedSampler gives each ceil(rows / world) rows.
  int64_t batches_per_epoch() const {
    const int64_t world = group_.world_size();
    const int64_t rows = (int64_t(train_.size()) + world - 1) / world;
    return (rows + args_.per_device_train_batch_size - 1) / args_.per_device_train_batch_size;
  }
  // HF: updates per epoch = batches // accumulation (at least 1); total = ceil(epochs · that).
  int64_t total_steps() const {
    if (args_.max_steps > 0) return args_.max_steps;
    const int64_t per_epoch = std::max<int64_t>(1, batches_per_epoch() / args_.gradient_accumulation_steps);
    return int64_t(std::ceil(args_.num_train_epochs * double(per_epoch)));
  }
  int64_t truncated_rows() const { return truncated_; }

  // What is legal but probably not meant, printed by train() (rank 0) before the first update:
  // a warm-up at least as long as the run (HF's schedules then raise the learning rate for the
  // whole run, and it never reaches learning_rate).
  std::vector<std::string> warnings() const {
    std::vector<std::string> w;
    const bool warms = args_.lr_scheduler_type != "constant";
    if (warms && args_.warmup_steps > 0 && args_.warmup_steps >= total_steps())
      w.push_back(detail::cat("warmup_steps ", args_.warmup_steps, " >= the run's ", total_steps(),
                              " updates: the learning rate rises for the whole run and never reaches ",
                              args_.learning_rate, " (lower warmup_steps — --warmup in the course programs — e.g. to ",
                              std::max<int64_t>(1, total_steps() / 10), ", or train for more updates)"));
    return w;
  }
  void set_checkpoint_loader(LoadFn load) { load_ = std::move(load); }
  // The process group to train over (default: distributed::default_group() when the Trainer is
  // made: call init_process_group first); ProcessGroup::single() trains this rank alone.
  void set_process_group(const distributed::ProcessGroup& group) { group_ = group; }

  // The weights of a checkpoint folder into `model`: a peft adapter (adapter_model.safetensors)
  // into the model's LoRA layers, else the model's own tensors (model.safetensors or shards).
  static void load_checkpoint_weights(CausalLM& model, const std::filesystem::path& dir) {
    if (std::filesystem::exists(dir / kAdapterWeightsFile)) {
      const std::filesystem::path f = dir / kAdapterWeightsFile;
      load_adapter_weights(model, io::load_safetensors(f), f.string());
    } else {
      load_checkpoint(model, dir, model_type_of(model));
    }
  }

  // output_dir's checkpoint-N folders (N digits only; other folders are left alone), by N.
  static std::vector<std::pair<int64_t, std::filesystem::path>> checkpoint_folders(
      const std::filesystem::path& output_dir) {
    namespace fs = std::filesystem;
    std::vector<std::pair<int64_t, fs::path>> found;
    if (fs::is_directory(output_dir))
      for (const auto& e : fs::directory_iterator(output_dir)) {
        const std::string n = e.path().filename().string();
        if (!e.is_directory() || n.rfind("checkpoint-", 0) != 0) continue;
        char* end = nullptr;
        const long long step = std::strtoll(n.c_str() + 11, &end, 10);
        if (*end == 0) found.emplace_back(step, e.path());
      }
    std::sort(found.begin(), found.end());
    return found;
  }

  // The folder "latest" names: output_dir's checkpoint-N with the largest N.
  static std::filesystem::path latest_checkpoint(const std::filesystem::path& output_dir) {
    const auto found = checkpoint_folders(output_dir);
    GALVANI_CHECK(!found.empty(), "resume_from_checkpoint=latest: no checkpoint-N folder in ", output_dir.string(),
                  " (the run saved none yet: see --save-steps)");
    return found.back().second;
  }

  TrainResult train() {
    namespace fs = std::filesystem;
    // A model stored in bf16/f16 (load_causal_lm with dtype bf16) computes in f32 but its weights
    // cannot take f32 optimizer updates: refused before any file is written.
    for (const auto& [name, p] : model_.named_parameters())
      GALVANI_CHECK(!p.requires_grad() || p.dtype() == DType::f32 || p.dtype() == DType::f64, "Trainer: parameter '",
                    name, "' is ", dtype_name(p.dtype()),
                    " and trainable; galvani's optimizers update f32 (or f64) weights: load the model in float32 (bf16 mixed precision is "
                    "--bf16 / TrainingArguments::bf16, with f32 weights), or freeze it (requires_grad_(false), as a "
                    "LoRA's base)");
    keep_freed_memory();  // reuse each step's big buffers instead of faulting in fresh pages
    if (args_.gradient_checkpointing) model_.gradient_checkpointing_enable();  // as HF's Trainer does
    const bool main_process = group_.is_main_process();
    std::ofstream jsonl;  // rank 0's alone
    if (main_process) {
      fs::create_directories(args_.output_dir);
      for (const fs::path& stale : stale_checkpoint_folders(args_.output_dir)) {
        std::fprintf(stderr, "removing %s, left by a run killed while saving a checkpoint\n", stale.string().c_str());
        fs::remove_all(stale);
      }
      jsonl.open(fs::path(args_.output_dir) / "log.jsonl");
      GALVANI_CHECK(jsonl, "Trainer: cannot write ", (fs::path(args_.output_dir) / "log.jsonl").string());
    }

    AdamWOptions aopt;
    aopt.lr = args_.learning_rate;
    aopt.beta1 = args_.adam_beta1;
    aopt.beta2 = args_.adam_beta2;
    aopt.eps = args_.adam_epsilon;
    aopt.weight_decay = args_.weight_decay;
    std::unique_ptr<Optimizer> opt = make_optimizer(args_.optim, decay_groups(), aopt);
    LRSchedule sched{LRSchedule::parse(args_.lr_scheduler_type), args_.warmup_steps, total_steps()};
    std::vector<Tensor> params = model_.trainable_parameters();

    if (main_process)
      for (const std::string& w : warnings()) std::fprintf(stderr, "Trainer: warning: %s\n", w.c_str());
    TrainResult res;
    const int64_t total = total_steps();
    const int64_t B = args_.per_device_train_batch_size, accum = args_.gradient_accumulation_steps;
    ProgressBar bar("train", total, stderr, args_.progress_bar && main_process);
    model_.set_seed(args_.seed);  // dropout masks follow the run's seed, like transformers' set_seed
    history_.clear();
    scaler_.reset();
    if (args_.fp16) scaler_.emplace(args_.grad_scaler);  // torch.amp.GradScaler, as accelerate makes it
    overflow_skips_ = 0;
    distributed::GradientReducer reducer(group_, params, args_.ddp_bucket_cap_mb, args_.ddp_overlap);
    distributed::GradientReducer::broadcast_parameters(group_, model_.parameters());  // one process: nothing
    const int64_t start = args_.resume_from_checkpoint.empty() ? 0 : resume(*opt, res, jsonl);
    bar.resume_from(start);
    if (!eval_.empty() && args_.eval_on_start && start == 0 && main_process) evaluate(0, 0, res, jsonl);
    model_.train();
    double window_loss = 0;
    int64_t window_steps = 0;
    int64_t step = 0;
    for (int64_t epoch = 0; step < total; ++epoch) {
      const std::vector<int64_t> order = distributed::distributed_indices(
          int64_t(train_.size()), args_.seed, epoch, group_.rank(), group_.world_size());
      const int64_t nb = batches_per_epoch();
      for (int64_t first = 0; first < nb && step < total; first += accum) {
        const int64_t last = std::min(nb, first + accum);
        if (step < start) {  // resuming: this update is in the checkpoint already
          ++step;
          continue;
        }
        // Collate the update's micro-batches first, to count its predicted tokens.
        std::vector<BatchTensors> micro;
        int64_t items = 0, tokens = 0;
        for (int64_t b = first; b < last; ++b) {
          Rows rows;
          for (int64_t i = b * B; i < std::min<int64_t>((b + 1) * B, int64_t(order.size())); ++i)
            rows.push_back(train_[size_t(order[size_t(i)])]);
          Batch batch = collate_causal_lm(rows, CollatorOptions{pad_id_});
          tokens += batch.batch * batch.seq;
          for (int64_t b2 = 0; b2 < batch.batch; ++b2)
            for (int64_t t = 1; t < batch.seq; ++t) items += batch.at(batch.labels, b2, t) != -100;
          micro.push_back(to_tensors(batch));
        }
        const auto t0 = ProgressBar::Clock::now();
        int64_t counts[2] = {items, tokens};
        group_.all_reduce(counts, 2);  // every rank's predicted tokens and inputs (one process: as they are)
        items = counts[0];
        tokens = counts[1];
        // Σ NLL / (the update's predicted tokens on all ranks / W): the gradients' mean over the
        // ranks is then the gradient of the whole update's loss (one process: Σ NLL / tokens).
        const double divisor = double(std::max<int64_t>(items, 1)) / double(group_.world_size());
        double update_loss = 0;
        for (size_t m = 0; m < micro.size(); ++m) {
          const BatchTensors& mb = micro[m];
          Tensor loss;
          {
            const AutocastGuard amp(autocast_dtype(), mixed_precision());  // HF's accelerator.autocast()
            Tensor logits = model_.forward(mb.input_ids, mb.attention_mask);
            loss = causal_lm_loss(logits, mb.labels, Reduction::sum) / divisor;
          }
          update_loss += loss.item();
          if (m + 1 == micro.size()) reducer.prepare_for_backward();  // the rest ran under no_sync
          (scaler_ ? scaler_->scale(loss) : loss).backward();
        }
        const double comm = reducer.all_reduce_gradients();  // one process: 0, nothing moves
        update_loss = group_.all_reduce(update_loss, distributed::ReduceOp::avg);
        // fp16: gradients back to their true size before clipping (HF: unscale_gradients). Every
        // rank sees the same averaged gradients, so every rank finds the same overflow.
        // fp16: unscale, and every rank agrees whether any gradient overflowed (one int, summed).
        bool overflow = false;
        double scale_used = 0;
        if (scaler_) {
          scale_used = scaler_->get_scale();
          int64_t found = scaler_->unscale_(params);
          group_.all_reduce(&found, 1);  // one process: as it is
          overflow = found > 0;
          scaler_->set_found_inf(overflow);
        }
        const double grad_norm = clip_grad_norm(params, args_.max_grad_norm);
        const double lr = args_.learning_rate * sched.factor(step - overflow_skips_);
        // The loss scaler's own skip: an overflow with a finite loss while the scale is above 1.
        // At a scale of 1 or less the gradients are out of f16's range (or NaN) by themselves:
        // that is a non-finite update like any other (on_nonfinite), not something a smaller
        // scale can cure.
        const bool scaler_skip = overflow && std::isfinite(update_loss) && scale_used > 1;
        if (scaler_skip || !std::isfinite(update_loss) || !std::isfinite(grad_norm)) {
          std::string what = "the f16 gradients overflowed";
          if (!scaler_skip) {
            // NaN or Inf: find the culprit (the norm says one exists) before anything changes.
            what = first_nonfinite_grad(model_.named_parameters());
            if (!std::isfinite(update_loss))
              what = galvani::detail::cat("the loss is ", update_loss, what.empty() ? "" : ", and ", what);
            if (args_.on_nonfinite == "stop")
              throw Error(galvani::detail::cat(
                  "Trainer: update ", step + 1, ": ", what, overflow ? galvani::detail::cat(
                  " at an fp16 loss scale of ", scale_used) : "", ". The weights were not updated",
                  args_.save_steps > 0 ? " (the last checkpoint-N in " + args_.output_dir + " is intact)" : "",
                  ". Lower the learning rate, check the data, or drop such updates with on_nonfinite=\"skip\" "
                  "(--on-nonfinite skip)"));
          }
          // A skipped update: no optimizer step; the scaler backs off; HF steps the LR scheduler
          // only when the optimizer stepped, so an update the scaler skipped does not count in
          // the schedule (a non-finite skip without fp16 keeps galvani's step-indexed schedule).
          if (scaler_) scaler_->update();
          if (overflow) ++overflow_skips_;
          opt->zero_grad();
          ++step;
          if (main_process) std::fprintf(stderr, "\nTrainer: update %lld skipped: %s%s\n", (long long)step, what.c_str(),
                                         scaler_ ? galvani::detail::cat("; loss scale now ", scaler_->get_scale()).c_str() : "");
          if (scaler_skip) {
            // Logged as HF logs it: the loss counts in the logging window, the entry has the lr
            // (not advanced) and the non-finite grad_norm, plus what happened to the scale.
            window_loss += update_loss;
            ++window_steps;
            if (args_.logging_steps > 0 && step % args_.logging_steps == 0) {
              LogEntry e;
              e.step = step;
              e.epoch = double(epoch) + double(last) / double(nb);
              e.loss = window_loss / double(window_steps);
              e.learning_rate = lr;
              e.grad_norm = grad_norm;
              e.tokens = tokens;
              e.elapsed = bar.elapsed();
              e.skipped_overflow = true;
              e.loss_scale = scaler_->get_scale();
              window_loss = 0;
              window_steps = 0;
              res.log.push_back(e);
              log_line(e.to_json(), jsonl);
            }
          } else {
            log_line({{"step", step}, {"skipped_nonfinite", what}}, jsonl);
          }
          bar.update(step, scaler_skip ? "skipped: f16 overflow" : "skipped: nan/inf");
          if (args_.save_steps > 0 && step % args_.save_steps == 0 && main_process)
            save_checkpoint(step, double(epoch) + double(last) / double(nb), *opt);
          continue;
        }
        opt->set_lr(lr);
        if (fault_.kill_in_step == step + 1) detail::fault_kill_mid_update(*opt, params, step + 1);  // test hook
        opt->step();
        if (scaler_) scaler_->update();
        opt->zero_grad();
        ++step;
        const double dt = std::chrono::duration<double>(ProgressBar::Clock::now() - t0).count();
        window_loss += update_loss;
        ++window_steps;

        LogEntry e;
        e.step = step;
        e.epoch = double(epoch) + double(last) / double(nb);
        e.loss = update_loss;
        e.learning_rate = lr;
        e.grad_norm = grad_norm;
        e.tokens = tokens;
        e.tokens_per_second = double(tokens) / std::max(dt, 1e-9);
        e.elapsed = bar.elapsed();
        e.all_reduce_seconds = comm;
        e.all_reduce_wait_seconds = reducer.waited_seconds();
        if (args_.logging_steps > 0 && step % args_.logging_steps == 0) {
          e.loss = window_loss / double(window_steps);  // HF logs the mean since the last log
          window_loss = 0;
          window_steps = 0;
          res.log.push_back(e);
          log_line(e.to_json(), jsonl);
        }
        char info[160];
        std::snprintf(info, sizeof info, "loss %.4f lr %.2e %.0f tok/s", update_loss, lr, e.tokens_per_second);
        bar.update(step, info);
        res.final_loss = update_loss;
        if (args_.save_steps > 0 && step % args_.save_steps == 0 && main_process)
          save_checkpoint(step, double(epoch) + double(last) / double(nb), *opt);
      }
      // An epoch that ended before the resumed step was evaluated before its checkpoint.
      if (!eval_.empty() && step >= start && main_process) evaluate(step, epoch + 1, res, jsonl);
    }
    res.global_step = step;
    res.seconds = bar.elapsed();
    if (main_process) write_loss_curve(res);
    return res;
  }

  // Mean NLL per predicted token of the test rows, logged as eval_loss.
  void evaluate(int64_t step, int64_t epoch, TrainResult& res, std::ofstream& jsonl) {
    const AutocastGuard amp(autocast_dtype(), mixed_precision());  // HF evaluates under the same autocast
    PerplexityResult p = perplexity(model_, eval_);
    res.eval_loss.emplace_back(step, p.total_nll / double(std::max<int64_t>(p.predicted_tokens, 1)));
    log_line({{"step", step}, {"epoch", epoch}, {"eval_loss", res.eval_loss.back().second}}, jsonl);
  }

  // Save into output_dir/checkpoint-STEP via a temporary folder and a rename: the weights (the
  // save function's), the optimizer state and trainer_state.json.
  void save_checkpoint(int64_t step, double epoch, const Optimizer& opt) const {
    if (!save_) return;
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(args_.output_dir) / ("checkpoint-" + std::to_string(step));
    const fs::path tmp = fs::path(args_.output_dir) / (".checkpoint-" + std::to_string(step) + ".tmp");
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_(model_, tmp);
    io::StateDict sd;
    for (auto& [name, t] : opt.named_state()) sd.insert(name, t);
    io::save_safetensors(tmp / "optimizer.safetensors", sd,
                         io::Metadata{{"optim", opt.name()}, {"step", std::to_string(opt.step_count())}});
    if (fault_.kill_in_save == step)  // test hook
      detail::fault_kill(galvani::detail::cat("while writing checkpoint-", step, ": weights and optimizer state in ",
                                              tmp.filename().string(), ", no trainer_state.json, not renamed"));
    nlohmann::json state = {{"global_step", step},
                            {"epoch", epoch},
                            {"max_steps", total_steps()},
                            {"num_train_epochs", args_.num_train_epochs},
                            {"logging_steps", args_.logging_steps},
                            {"save_steps", args_.save_steps},
                            {"train_batch_size", args_.per_device_train_batch_size},
                            {"gradient_accumulation_steps", args_.gradient_accumulation_steps},
                            {"num_train_rows", int64_t(train_.size())},
                            {"world_size", group_.world_size()},
                            {"seed", args_.seed},
                            {"optim", opt.name()},
                            {"learning_rate", args_.learning_rate},
                            {"lr_scheduler_type", args_.lr_scheduler_type},
                            {"warmup_steps", args_.warmup_steps},
                            {"weight_decay", args_.weight_decay},
                            {"rng_state", {{"seed", model_.generator().seed()}, {"counter", model_.generator().counter()}}},
                            {"mixed_precision", mixed_precision_name()},
                            {"optimizer_steps_skipped", overflow_skips_},
                            {"optimizer_step_count", opt.step_count()},
                            {"log_history", history_}};
    if (scaler_)  // torch's GradScaler.state_dict(): HF saves it as scaler.pt
      state["scaler"] = {{"scale", scaler_->get_scale()}, {"growth_tracker", scaler_->growth_tracker()}};
    io::write_json_file(tmp / "trainer_state.json", state);
    // Durable before visible: the files and their folder reach the disk, then the rename, then
    // the parent folder that records it.
    for (const auto& e : fs::recursive_directory_iterator(tmp))
      detail::fsync_path(e.path(), e.is_directory());
    detail::fsync_path(tmp, true);
    // A checkpoint-N already there (a run resumed from an older folder) goes by a rename, not by
    // remove_all, whose progress a kill would leave visible as a half-deleted checkpoint-N.
    const fs::path old = hidden_path(dir, ".old");
    if (fs::exists(dir)) {
      fs::remove_all(old);
      fs::rename(dir, old);
    }
    fs::rename(tmp, dir);  // atomic on one filesystem: the checkpoint appears whole or not at all
    detail::fsync_path(args_.output_dir, true);
    fs::remove_all(old);
    prune_checkpoints();
  }

  // What an interrupted save or prune leaves in output_dir: hidden .checkpoint-N.tmp and
  // .checkpoint-N.old folders (N digits), never a checkpoint-N.
  static std::vector<std::filesystem::path> stale_checkpoint_folders(const std::filesystem::path& output_dir) {
    namespace fs = std::filesystem;
    std::vector<fs::path> found;
    if (fs::is_directory(output_dir))
      for (const auto& e : fs::directory_iterator(output_dir)) {
        const std::string n = e.path().filename().string();
        if (!e.is_directory() || n.rfind(".checkpoint-", 0) != 0 || n.size() < 17) continue;
        const std::string tail = n.substr(n.size() - 4), digits = n.substr(12, n.size() - 16);
        if ((tail == ".tmp" || tail == ".old") && !digits.empty() &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
          found.push_back(e.path());
      }
    std::sort(found.begin(), found.end());
    return found;
  }

 private:
  void log_line(const nlohmann::json& j, std::ofstream& jsonl) {
    history_.push_back(j);
    if (jsonl.is_open()) jsonl << j.dump() << "\n" << std::flush;  // rank 0's
  }

  // Restore a checkpoint (see the header comment); returns its global step. Every mismatch
  // between the checkpoint and this run is an error naming the field: replaying the data
  // order is only right for the same rows, batch size, accumulation and seed.
  int64_t resume(Optimizer& opt, TrainResult& res, std::ofstream& jsonl) {
    namespace fs = std::filesystem;
    const fs::path dir = args_.resume_from_checkpoint == "latest" ? latest_checkpoint(args_.output_dir)
                                                                  : fs::path(args_.resume_from_checkpoint);
    GALVANI_CHECK(fs::is_directory(dir), "resume_from_checkpoint: ", dir.string(), " is not a folder");
    const fs::path state_file = dir / "trainer_state.json";
    GALVANI_CHECK(fs::exists(state_file), "resume_from_checkpoint: ", dir.string(),
                  " has no trainer_state.json (is it a checkpoint-N folder of a galvani run?)");
    const nlohmann::json st = io::read_json_file(state_file);
    const auto expect = [&](const char* key, const nlohmann::json& mine) {
      GALVANI_CHECK(st.contains(key) && st[key] == mine, state_file.string(), ": ", key, " is ",
                    st.contains(key) ? st[key].dump() : std::string("missing"), " but this run has ", mine.dump(),
                    "; resume with the settings of the run that wrote the checkpoint");
    };
    expect("train_batch_size", args_.per_device_train_batch_size);
    expect("gradient_accumulation_steps", args_.gradient_accumulation_steps);
    expect("num_train_rows", int64_t(train_.size()));
    expect("seed", args_.seed);
    // A LoRA run's checkpoint holds an adapter, a full finetune's the model: say which differs
    // before the optimizer (whose default differs between the two and would be named instead).
    {
      const bool ckpt_adapter = fs::exists(dir / kAdapterWeightsFile) || fs::exists(dir / kAdapterConfigFile),
                 run_adapter = !lora_layers(model_).empty();
      GALVANI_CHECK(ckpt_adapter == run_adapter, dir.string(), " is the checkpoint of ",
                    ckpt_adapter ? "a LoRA run (adapter_model.safetensors)" : "a full finetune (no adapter)",
                    " but this run ", run_adapter ? "trains LoRA adapters" : "is a full finetune",
                    "; resume with the method of the run that wrote it (--method ", ckpt_adapter ? "lora/qlora" : "full",
                    " in galvani's programs)");
    }
    expect("optim", opt.name());
    // The update's hyperparameters. HF's Trainer restores the optimizer's and scheduler's state on
    // resume, so a changed learning_rate there silently keeps the old one; galvani refuses instead.
    // Compared only when recorded (checkpoints of galvani before 2026-12-01 lack them).
    for (const auto& [key, mine] : {std::pair<const char*, nlohmann::json>{"learning_rate", args_.learning_rate},
                                    {"lr_scheduler_type", args_.lr_scheduler_type},
                                    {"warmup_steps", args_.warmup_steps},
                                    {"weight_decay", args_.weight_decay},
                                    {"mixed_precision", mixed_precision_name()}})
      if (st.contains(key)) expect(key, mine);
    int64_t step = 0;
    try {
      step = st.at("global_step").get<int64_t>();
      const auto& rng = st.at("rng_state");
      model_.generator() = Generator(rng.at("seed").get<uint64_t>());
      model_.generator().advance(rng.at("counter").get<uint64_t>());
      history_ = st.at("log_history").get<std::vector<nlohmann::json>>();
      overflow_skips_ = st.value("optimizer_steps_skipped", int64_t(0));
      GALVANI_CHECK(overflow_skips_ >= 0 && overflow_skips_ <= step, state_file.string(), ": optimizer_steps_skipped is ",
                    overflow_skips_, ", outside [0, global_step = ", step, "]");
      if (scaler_) {
        GALVANI_CHECK(st.contains("scaler"), state_file.string(),
                      ": no \"scaler\" state, which an fp16 run's checkpoint holds; resume with the precision of the "
                      "run that wrote it");
        scaler_->load_state(st.at("scaler").at("scale").get<double>(),
                            st.at("scaler").at("growth_tracker").get<int64_t>());
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(state_file.string() + ": " + e.what());
    }
    (load_ ? load_ : LoadFn(load_checkpoint_weights))(model_, dir);

    const fs::path opt_file = dir / "optimizer.safetensors";
    GALVANI_CHECK(fs::exists(opt_file), "resume_from_checkpoint: ", dir.string(), " has no optimizer.safetensors");
    const io::StateDict sd = io::load_safetensors(opt_file);
    for (auto& [name, t] : opt.named_state()) {
      const io::StateEntry* e = sd.find(name);
      GALVANI_CHECK(e && !e->is_raw(), opt_file.string(), ": no optimizer state '", name,
                    "' (was the checkpoint written for another model or adapter?)");
      GALVANI_CHECK(e->tensor.dtype() == t.dtype() && e->shape() == t.shape(), opt_file.string(), ": '", name, "' is ",
                    dtype_name(e->tensor.dtype()), " ", shape_str(e->shape()), " but this run's optimizer needs ",
                    dtype_name(t.dtype()), " ", shape_str(t.shape()));
      NoGradGuard no_grad;
      copy_into(t, e->tensor);
    }
    // Adam's t counts the steps the optimizer made (skipped updates made none); checkpoints
    // written before it was recorded assume every update stepped.
    opt.set_step_count(st.value("optimizer_step_count", step));

    for (const auto& j : history_) {  // log.jsonl and the result as they were at the checkpoint
      if (jsonl.is_open()) jsonl << j.dump() << "\n";
      if (j.contains("eval_loss")) {
        res.eval_loss.emplace_back(j.value("step", int64_t(0)), j.value("eval_loss", 0.0));
      } else if (j.contains("loss")) {
        // A non-finite number (an fp16 skip's grad_norm) was written as null: read back as NaN.
        const auto number = [&j](const char* key) {
          return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
        };
        LogEntry e;
        e.step = j.value("step", int64_t(0));
        e.epoch = number("epoch");
        e.loss = number("loss");
        e.learning_rate = number("learning_rate");
        e.grad_norm = number("grad_norm");
        e.skipped_overflow = j.value("skipped_overflow", false);
        if (e.skipped_overflow) e.loss_scale = number("loss_scale");
        res.log.push_back(e);
      }
    }
    if (jsonl.is_open()) jsonl << std::flush;
    // Another world size resumes at the same update count; the data order then continues as
    // HF's does (by steps), not row for row.
    const int64_t was_world = st.value("world_size", int64_t(1)), world = group_.world_size();
    const int64_t rows_per_rank = args_.per_device_train_batch_size * args_.gradient_accumulation_steps;
    if (was_world != world && group_.is_main_process())
      std::fprintf(stderr,
                   "resuming a run of %lld process(es) with %lld: updates continue from step %lld, but an update now "
                   "takes %lld rows instead of %lld and the run has %lld updates (was %lld): the schedule and the "
                   "epochs follow the new count\n",
                   (long long)was_world, (long long)world, (long long)step, (long long)(rows_per_rank * world),
                   (long long)(rows_per_rank * was_world), (long long)total_steps(),
                   (long long)st.value("max_steps", int64_t(0)));
    if (group_.is_main_process())
      std::fprintf(stderr, "resuming from %s at step %lld\n", dir.string().c_str(), (long long)step);
    return step;
  }

  // HF's get_decay_parameter_names: no weight decay for biases and norm weights.
  std::vector<ParamGroup> decay_groups() const {
    ParamGroup decay{{}, args_.weight_decay}, no_decay{{}, 0.0};
    for (auto& [name, p] : model_.named_parameters()) {
      if (!p.requires_grad()) continue;
      const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
      const bool is_norm = name.find("ln_") != std::string::npos || name.find("norm") != std::string::npos;
      (is_bias || is_norm ? no_decay : decay).params.push_back(p);
    }
    return {decay, no_decay};
  }

  // output_dir/checkpoint-N -> output_dir/.checkpoint-N{suffix}: out of checkpoint_folders' sight.
  static std::filesystem::path hidden_path(const std::filesystem::path& dir, const char* suffix) {
    return dir.parent_path() / ("." + dir.filename().string() + suffix);
  }

  // The oldest checkpoints beyond save_total_limit, each renamed out of sight before it is deleted.
  void prune_checkpoints() const {
    if (args_.save_total_limit <= 0) return;
    const auto found = checkpoint_folders(args_.output_dir);
    for (size_t i = 0; i + size_t(args_.save_total_limit) < found.size(); ++i) {
      const std::filesystem::path gone = hidden_path(found[i].second, ".old");
      std::filesystem::remove_all(gone);
      std::filesystem::rename(found[i].second, gone);
      std::filesystem::remove_all(gone);
    }
  }

  void write_loss_curve(const TrainResult& res) const {
    if (res.log.empty()) return;
    LineChart c;
    c.title = "Training loss";
    c.xlabel = "step";
    c.ylabel = "loss (mean NLL per token)";
    Series s{"train", {}, {}};
    for (const auto& e : res.log) {
      s.x.push_back(double(e.step));
      s.y.push_back(e.loss);
    }
    c.series.push_back(s);
    if (!res.eval_loss.empty()) {
      Series ev{"test", {}, {}};
      for (auto [st, l] : res.eval_loss) {
        ev.x.push_back(double(st));
        ev.y.push_back(l);
      }
      c.series.push_back(ev);
    }
    save_svg(std::filesystem::path(args_.output_dir) / "loss.svg", to_svg(c));
  }

  bool mixed_precision() const { return args_.fp16 || args_.bf16; }
  DType autocast_dtype() const { return args_.fp16 ? DType::f16 : DType::bf16; }
  std::string mixed_precision_name() const { return args_.fp16 ? "fp16" : args_.bf16 ? "bf16" : "no"; }

  CausalLM& model_;
  distributed::ProcessGroup group_ = distributed::default_group();  // set_process_group
  TrainingArguments args_;
  Rows train_, eval_;
  int64_t pad_id_;
  SaveFn save_;
  LoadFn load_;
  std::optional<GradScaler> scaler_;  // fp16 runs (made in train())
  int64_t overflow_skips_ = 0;        // updates the scaler skipped: the LR schedule does not count them
  std::vector<nlohmann::json> history_;  // every line of log.jsonl: trainer_state.json's log_history
  int64_t truncated_ = 0;
  detail::FaultInjection fault_ = detail::FaultInjection::from_env();  // tests only (header comment)
};

}  // namespace galvani
