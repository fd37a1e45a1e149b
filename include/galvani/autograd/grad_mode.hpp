// autograd/grad_mode.hpp — whether ops record the graph: NoGradGuard, EnableGradGuard.
//
// Evaluation, generation and optimizer updates run under a NoGradGuard: ops then
// build no nodes and keep no saved tensors, which is what torch.no_grad() does.
#pragma once

namespace galvani {

struct GradMode {
  static bool& enabled_flag() {
    thread_local bool enabled = true;  // per thread, like torch's grad mode
    return enabled;
  }
  static bool is_enabled() { return enabled_flag(); }
  static void set_enabled(bool on) { enabled_flag() = on; }
};

// RAII: gradient recording is off inside the scope and restored after it.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: gradient recording is on inside the scope (torch.enable_grad) and restored after it.
// Gradient checkpointing recomputes a forward inside backward(), which runs with it off.
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace galvani
