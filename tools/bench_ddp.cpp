// bench_ddp — data-parallel scaling: tokens/s and the time in the gradient all-reduce per update,
// for one process or N ranks (docs/distributed.md, "Measured").
//
//   tools/launch.sh -n 1 --threads 2 build/bench_ddp --config distilgpt2 --steps 6
//   tools/launch.sh -n 2 --threads 1 build/bench_ddp --config distilgpt2 --steps 6
//
// A GPT-2 of the chosen shape, randomly initialised (time does not depend on the values),
// trained by the Trainer on random token rows of --seq-len tokens, --batch rows per rank per
// update (so N ranks process N times the tokens of one). Rank 0 prints the median tokens/s over
// the updates after the first (all ranks' tokens), the median update time, the median
// all-reduce time of an update and the part of it the update waited for after backward (what
// the overlap did not hide; without --ddp-overlap: all of it), and the all-reduced bytes. Built with MPI
// when CMake finds it; without, it runs as the single process.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <galvani/data/rng.hpp>
#include <galvani/models/gpt2.hpp>
#include <galvani/train/distributed.hpp>
#include <galvani/train/trainer.hpp>

using namespace galvani;

namespace {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_ddp: data-parallel training throughput and all-reduce time (run under tools/launch.sh)"};
  std::string config = "distilgpt2";
  int64_t steps = 6, batch = 2, seq = 128;
  app.add_option("--config", config, "model shape: tiny (2 layers, d 128) or distilgpt2 (6 layers, d 768)")
      ->check(CLI::IsMember({"tiny", "distilgpt2"}));
  app.add_option("--steps", steps, "updates to run (the first is not timed)")->check(CLI::Range(int64_t(2), int64_t(100000)));
  app.add_option("--batch", batch, "rows per rank per update")->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_option("--seq-len", seq, "tokens per row")->check(CLI::Range(int64_t(2), int64_t(1024)));
  double bucket_cap_mb = 25;
  bool overlap = false;
  app.add_option("--ddp-bucket-cap-mb", bucket_cap_mb, "gradient bucket size, MB (TrainingArguments::ddp_bucket_cap_mb)")
      ->check(CLI::Range(1e-3, 1e6));
  app.add_flag("--ddp-overlap", overlap, "all-reduce buckets while backward runs (TrainingArguments::ddp_overlap; default: after backward)");
  CLI11_PARSE(app, argc, argv);
  try {
    const distributed::ProcessGroup& group = distributed::init_process_group("mpi");
    GPT2Config c;
    c.vocab_size = 50257;
    c.n_positions = 1024;
    c.n_embd = config == "tiny" ? 128 : 768;
    c.n_layer = config == "tiny" ? 2 : 6;
    c.n_head = config == "tiny" ? 4 : 12;
    GPT2LMHeadModel model(c, 1);
    int64_t params = 0;
    for (const Tensor& p : model.trainable_parameters()) params += p.numel();

    Trainer::Rows rows;
    SplitMix64 rng(7);
    for (int64_t r = 0; r < steps * batch * group.world_size(); ++r) {
      std::vector<int32_t> row(static_cast<size_t>(seq));
      for (auto& t : row) t = int32_t(rng.below(uint64_t(c.vocab_size)));
      rows.push_back(std::move(row));
    }
    TrainingArguments a;
    a.output_dir = (std::filesystem::temp_directory_path() / ("galvani_bench_ddp_" + std::to_string(group.rank()))).string();
    a.max_steps = steps;
    a.per_device_train_batch_size = batch;
    a.warmup_steps = 0;
    a.save_steps = 0;
    a.eval_on_start = false;
    a.progress_bar = group.is_main_process();
    a.ddp_bucket_cap_mb = bucket_cap_mb;
    a.ddp_overlap = overlap;
    Trainer trainer(model, a, rows, 0);
    TrainResult res = trainer.train();
    std::filesystem::remove_all(a.output_dir);
    if (!group.is_main_process()) return 0;
    std::vector<double> tps, step_s, comm_s, wait_s;
    for (size_t i = 1; i < res.log.size(); ++i) {
      tps.push_back(res.log[i].tokens_per_second);
      step_s.push_back(double(res.log[i].tokens) / std::max(res.log[i].tokens_per_second, 1e-9));
      comm_s.push_back(res.log[i].all_reduce_seconds);
      wait_s.push_back(res.log[i].all_reduce_wait_seconds);
    }
    std::printf("bench_ddp: config %s, %d rank(s) x %d thread(s), batch %lld x %lld per rank, %lld updates, "
                "%g MB buckets, %s\n",
                config.c_str(), group.world_size(), omp_get_max_threads(), (long long)batch, (long long)seq,
                (long long)steps, bucket_cap_mb, overlap ? "overlapped with backward" : "all-reduce after backward");
    std::printf("  tokens/s %.1f (all ranks), update %.3f s, all-reduce %.3f s per update (%.0f%%), waited for after "
                "backward %.3f s (%.0f%%), %.1f MB of f32 gradients\n",
                median(tps), median(step_s), median(comm_s), 100 * median(comm_s) / std::max(median(step_s), 1e-9),
                median(wait_s), 100 * median(wait_s) / std::max(median(step_s), 1e-9), double(params) * 4 / 1e6);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ddp: %s\n", e.what());
    return 1;
  }
}
