// optim/grad_scaler.hpp — dynamic loss scaling for f16 training: torch.amp.GradScaler.
//
// f16 keeps 5 exponent bits: gradients below 2^-24 flush to zero, values above 65,504 become
// inf. Under autocast with f16 the backward's gradients are rounded to f16 (ops/autocast.hpp),
// so the loss is multiplied by a large scale before backward (small gradients survive), the
// gradients are divided by it before anything reads them, and an update whose gradients
// overflowed is skipped and the scale halved. The Hugging Face Trainer with fp16=True does:
//   scaler.scale(loss).backward();  scaler.unscale_(optimizer);  clip_grad_norm_(...);
//   scaler.step(optimizer);  scaler.update();   // the LR scheduler steps only if the step ran
//
// Semantics of torch 2.x (torch/amp/grad_scaler.py and the CPU kernels
// _amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_), with their roundings:
//   scale          an f32 number, init_scale (65,536) at the start
//   unscale_       inv = f32(1 / f64(scale)); each gradient element g: found_inf if g is not
//                  finite; g ← g · inv (in f32)
//   step           runs the optimizer only when unscale_ found nothing non-finite
//   update         found_inf: scale ← f32(f64(scale) · backoff_factor) (0.5), growth_tracker ← 0;
//                  else growth_tracker + 1, and on reaching growth_interval (2,000):
//                  scale ← f32(f64(scale) · growth_factor) (2) if that is finite, growth_tracker ← 0
//                  (the kernel multiplies the f32 scale by the double factor, then stores f32)
// bf16 has f32's exponent range and needs no scaler (HF uses none with bf16=True).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../ops/elementwise.hpp"

namespace galvani {

// torch.amp.GradScaler's constructor arguments, with its defaults.
struct GradScalerOptions {
  double init_scale = 65536.0;    // the first scale (2^16); stored as f32, so it must fit one
  double growth_factor = 2.0;     // the scale's factor after growth_interval updates without overflow
  double backoff_factor = 0.5;    // the scale's factor after an overflow
  int64_t growth_interval = 2000; // updates without overflow before the scale grows
};

class GradScaler {
 public:
  // Error: init_scale not a finite f32 > 0, growth_factor not finite or ≤ 1, backoff_factor not
  // in (0, 1), growth_interval < 1 (torch asserts the same).
  explicit GradScaler(GradScalerOptions opt = {}) : opt_(opt), scale_(float(opt.init_scale)) {
    GALVANI_CHECK(std::isfinite(scale_) && scale_ > 0, "GradScaler: init_scale is ", opt.init_scale,
                  "; it must be a number > 0 that an f32 holds (at most 3.4e38)");
    GALVANI_CHECK(std::isfinite(opt.growth_factor) && opt.growth_factor > 1, "GradScaler: growth_factor is ",
                  opt.growth_factor, "; it must be > 1");
    GALVANI_CHECK(opt.backoff_factor > 0 && opt.backoff_factor < 1, "GradScaler: backoff_factor is ",
                  opt.backoff_factor, "; it must be in (0, 1)");
    GALVANI_CHECK(opt.growth_interval >= 1, "GradScaler: growth_interval is ", opt.growth_interval,
                  "; it must be >= 1");
  }

  // loss · scale (a recorded op: backward then carries the scaled gradient). Any shape.
  Tensor scale(const Tensor& loss) const { return loss * double(scale_); }

  // Divides every defined .grad of params by the scale, in place (f32 gradients), and returns
  // whether any element was NaN or ±inf before the division (torch checks the scaled values).
  // Once per update; a second call before update() is an error, as torch's "unscale_() has
  // already been called on this optimizer since the last update()".
  // Error: called twice before update(); a gradient that is not an f32 CPU tensor (checked for
  // every parameter before any gradient changes).
  bool unscale_(const std::vector<Tensor>& params) {
    GALVANI_CHECK(!unscaled_, "GradScaler: unscale_() was already called since the last update()");
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& g = params[i].grad();
      GALVANI_CHECK(!g.defined() || (g.dtype() == DType::f32 && g.device().is_cpu()), "GradScaler: the gradient of "
                    "parameter ", i, " is ", g.defined() ? dtype_name(g.dtype()) : "", " on ",
                    g.defined() ? g.device().str() : "", "; gradients are unscaled as f32 CPU tensors (keep trainable "
                    "parameters f32, as torch's GradScaler requires)");
    }
    const float inv = float(1.0 / double(scale_));
    bool found = false;
    for (const Tensor& p : params) {
      if (!p.grad().defined()) continue;
      if (!p.grad().is_contiguous()) p.set_grad(p.grad().contiguous());
      Tensor g = p.grad();
      float* d = g.data<float>();
      const int64_t n = g.numel();
      bool bad = false;
#pragma omp parallel for reduction(|| : bad) schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) {
        bad = bad || !std::isfinite(d[i]);
        d[i] = d[i] * inv;
      }
      found = found || bad;
    }
    unscaled_ = true;
    found_inf_ = found;
    return found;
  }

  // unscale_ (if not called yet), then step() unless a gradient was non-finite. Returns
  // whether the optimizer stepped (HF's `optimizer_step_was_skipped` is its negation).
  template <class Opt>
  bool step(Opt& optimizer, const std::vector<Tensor>& params) {
    if (!unscaled_) unscale_(params);
    if (found_inf_) return false;
    optimizer.step();
    return true;
  }

  // The scale for the next update (see the header), and a fresh unscale_ allowed. Error: no
  // unscale_ (or step) since the last update — torch's "No inf checks were recorded prior to
  // update."
  void update() {
    GALVANI_CHECK(unscaled_, "GradScaler: update() without unscale_() or step() since the last update(): no inf "
                  "checks were recorded");
    if (found_inf_) {
      scale_ = float(double(scale_) * opt_.backoff_factor);
      growth_tracker_ = 0;
    } else if (++growth_tracker_ == opt_.growth_interval) {
      const float grown = float(double(scale_) * opt_.growth_factor);
      if (std::isfinite(grown)) scale_ = grown;
      growth_tracker_ = 0;
    }
    unscaled_ = false;
    found_inf_ = false;
  }

  // The current scale (torch's get_scale()) and the updates without overflow since the scale
  // last changed (torch's _growth_tracker).
  double get_scale() const { return double(scale_); }
  int64_t growth_tracker() const { return growth_tracker_; }
  // Whether the last unscale_ saw a non-finite gradient.
  bool found_inf() const { return found_inf_; }
  // Data parallel: the verdict all ranks agreed on (any rank's overflow skips the update
  // everywhere), set after unscale_. Error: no unscale_ since the last update().
  void set_found_inf(bool any) {
    GALVANI_CHECK(unscaled_, "GradScaler: set_found_inf() before unscale_()");
    found_inf_ = any;
  }
  const GradScalerOptions& options() const { return opt_; }

  // torch's state_dict()/load_state_dict(): the scale and the growth tracker (what a resumed
  // run needs; the options are the run's arguments). Error: scale not finite and > 0, or
  // growth_tracker outside [0, growth_interval).
  void load_state(double scale, int64_t growth_tracker) {
    GALVANI_CHECK(std::isfinite(float(scale)) && scale > 0, "GradScaler: a saved scale of ", scale,
                  " is not a finite f32 > 0");
    GALVANI_CHECK(growth_tracker >= 0 && growth_tracker < opt_.growth_interval, "GradScaler: a saved growth_tracker of ",
                  growth_tracker, " is outside [0, ", opt_.growth_interval, ")");
    scale_ = float(scale);
    growth_tracker_ = growth_tracker;
    unscaled_ = found_inf_ = false;
  }

 private:
  GradScalerOptions opt_;
  float scale_;
  int64_t growth_tracker_ = 0;
  bool unscaled_ = false, found_inf_ = false;
};

}  // namespace galvani
