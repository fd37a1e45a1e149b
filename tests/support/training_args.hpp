// tests/support/training_args.hpp — the TrainingArguments of a quick, quiet test run: one
// epoch, batch 2, lr 1e-3, no warm-up, no checkpoints, no progress bar, no evaluation at
// start. Tests change the one or two fields they are about.
#pragma once
#include <filesystem>

#include <galvani/train/trainer.hpp>

namespace galvani::testing {

inline TrainingArguments quick_training_args(const std::filesystem::path& out) {
  TrainingArguments a;
  a.output_dir = out.string();
  a.num_train_epochs = 1;
  a.per_device_train_batch_size = 2;
  a.learning_rate = 1e-3;
  a.warmup_steps = 0;
  a.save_steps = 0;
  a.progress_bar = false;
  a.eval_on_start = false;
  return a;
}

}  // namespace galvani::testing
