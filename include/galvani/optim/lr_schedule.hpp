// optim/lr_schedule.hpp — learning-rate schedules as Hugging Face defines them.
//
// Each is a multiplier f(step) of the base lr, where `step` counts the updates
// already made (LambdaLR semantics): the first update uses f(0). So with
// warmup W > 0 the very first update happens at lr = 0, exactly as in
// transformers' get_linear_schedule_with_warmup.
#pragma once
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "../core/error.hpp"

namespace galvani {

struct LRSchedule {
  enum class Kind { linear, constant, constant_with_warmup, cosine };
  Kind kind = Kind::linear;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  static Kind parse(const std::string& name) {
    if (name == "linear") return Kind::linear;
    if (name == "constant") return Kind::constant;
    if (name == "constant_with_warmup") return Kind::constant_with_warmup;
    if (name == "cosine") return Kind::cosine;
    throw Error("lr_scheduler_type \"" + name + "\" is not one of linear, constant, constant_with_warmup, cosine");
  }

  // The multiplier for the update that follows `step` completed updates.
  double factor(int64_t step) const {
    const double s = double(step), w = double(warmup_steps), n = double(total_steps);
    switch (kind) {
      case Kind::constant: return 1.0;
      case Kind::constant_with_warmup: return step < warmup_steps ? s / std::max(1.0, w) : 1.0;
      case Kind::linear:
        if (step < warmup_steps) return s / std::max(1.0, w);
        return std::max(0.0, (n - s) / std::max(1.0, n - w));
      case Kind::cosine: {
        if (step < warmup_steps) return s / std::max(1.0, w);
        double progress = (s - w) / std::max(1.0, n - w);
        return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
      }
    }
    return 1.0;
  }
};

}  // namespace galvani
