// optim/bnb_adamw.hpp — bitsandbytes' AdamW with 8-bit or 32-bit states (AdamW8bit,
// PagedAdamW8bit, PagedAdamW32bit), as bitsandbytes 0.50 computes it on CPU tensors, and
// make_optimizer(): the Hugging Face Trainer's --optim names.
//
// 8-bit states (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization").
// m and v are stored as one byte per element plus one f32 absmax per block of 256:
//
//   m_i ≈ qmap1[state1_i] · absmax1[i / 256]    qmap1: the signed dynamic map (256 values in [−1, 1])
//   v_i ≈ qmap2[state2_i] · absmax2[i / 256]    qmap2: the unsigned dynamic map ([0, 1])
//
// A step dequantizes m and v to f32, does an f32 AdamW step, and quantizes them again:
// absmax = max |x| over the block, and x · (1/absmax) is coded through bitsandbytes' CPU table
// (65,536 points of [−1, 1], each mapped to the nearest entry of the map; see
// quant/blockwise8.hpp) — its CPU optimizer re-quantizes that way, its CUDA kernel by a
// binary search. A block whose absmax is 0 stores code 0. Parameters with fewer than min_8bit_size (4096) elements
// keep f32 states — tiny tensors gain nothing from 8 bits.
//
// The update, in bitsandbytes' CPU order (backends/cpu/ops.py; weight decay *before* the
// Adam step, as torch):
//   8-bit states:   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//                   p ← p·(1 − lr·λ);      p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
//   32-bit states:  the same moments; p ← p·(1 − lr·λ);  p ← p − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε·√(1−β2ᵗ))
// bitsandbytes' CUDA kernels apply the decay *after* the Adam step instead (reference-facts
// §2.1); the difference is O(lr²·λ) and zero for the Trainer's default λ = 0.
//
// Floating-point details followed so that the state bytes come out equal: torch's
// `add_(x, alpha=a)` is a fused multiply-add on its vectorized path (fmaf here), its
// addcmul is fma(value·g, g, v) (checked against torch 2.15 on this CPU) and its addcdiv is (value·m)/denom + p, all in f32.
//
// Paging. bitsandbytes' paged optimizers keep states in CUDA unified memory, which the driver
// moves between host and GPU on demand, and prefetch them to the GPU before each update. On
// the CPU there is nothing to page: a paged optimizer is its unpaged twin (bitsandbytes
// warns and does the same). The [cuda] work plugs a StatePager in: prefetch() before a
// parameter's update, release() after it — state in host memory, moved in chunks around the
// update.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../core/tensor.hpp"
#include "../quant/blockwise8.hpp"
#include "../quant/nf4_format.hpp"
#include "adamw.hpp"

namespace galvani {

// What every optimizer offers the Trainer.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  virtual void zero_grad() = 0;
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;
  virtual int64_t step_count() const = 0;
  virtual std::string name() const = 0;  // the HF --optim name
  // What a checkpoint keeps so that a resumed run continues bit for bit: the state tensors by
  // name, sharing storage with the optimizer (saving reads them; resuming copies into them),
  // numbered by the parameter's position as given, as torch's optimizer.state_dict() numbers
  // them — AdamW: state.{i}.exp_avg, state.{i}.exp_avg_sq; bitsandbytes: state.{i}.state1,
  // state2 (u8 codes or f32), absmax1, absmax2. Parameters not yet stepped have zero state.
  virtual std::vector<std::pair<std::string, Tensor>> named_state() const = 0;
  virtual void set_step_count(int64_t step) = 0;
};

// torch.optim.AdamW (adamw_torch) or transformers' legacy AdamW (adamw_hf): optim/adamw.hpp.
class TorchAdamW : public Optimizer {
 public:
  TorchAdamW(std::vector<Tensor> params, AdamWOptions opt) : inner_(std::move(params), opt) {}
  TorchAdamW(std::vector<ParamGroup> groups, AdamWOptions opt) : inner_(std::move(groups), opt) {}
  void step() override { inner_.step(); }
  void zero_grad() override { inner_.zero_grad(); }
  double lr() const override { return inner_.lr(); }
  void set_lr(double lr) override { inner_.set_lr(lr); }
  int64_t step_count() const override { return inner_.step_count(); }
  std::string name() const override { return inner_.options().legacy_hf ? "adamw_hf" : "adamw_torch"; }
  AdamW& adamw() { return inner_; }
  std::vector<std::pair<std::string, Tensor>> named_state() const override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < inner_.states().size(); ++i) {
      const auto& s = inner_.states()[i];
      out.emplace_back("state." + std::to_string(i) + ".exp_avg", s.m);
      out.emplace_back("state." + std::to_string(i) + ".exp_avg_sq", s.v);
    }
    return out;
  }
  void set_step_count(int64_t step) override { inner_.set_step_count(step); }

 private:
  AdamW inner_;
};

// ------------------------------------------------------------------ the dynamic maps

// bitsandbytes' create_dynamic_map(signed, max_exponent_bits = 7, total_bits = 8), the codes of
// the 8-bit states: the signed map for Adam's first moment, the unsigned one for the second.
// The 256 values are the tables of quant/nf4_format.hpp (the signed one also codes the
// double-quantized absmax of 4-bit weights), which equal bitsandbytes' bit for bit.
inline std::vector<float> dynamic_map(bool is_signed) {
  std::vector<float> data(256);
  for (int i = 0; i < 256; ++i) data[size_t(i)] = is_signed ? quant::dynamic_map_value(i) : quant::dynamic_map_unsigned_value(i);
  return data;
}

// bitsandbytes' CPU blockwise quantizer (cquantize_blockwise_cpu_fp32, what its CPU optimizer
// calls to re-quantize the states): x (n) → codes (n), absmax (ceil(n / block)). The scale is
// x · (1 / absmax), the reciprocal taken once per block, and the code is looked up in a
// 65,536-point table of [−1, 1] built from `code` (quant::build_lut8) — not always the nearest
// code, but the one bitsandbytes picks. A block whose absmax is 0 stores code 0.
inline void quantize_blockwise(const std::vector<uint8_t>& lut, const float* x, uint8_t* q, float* absmax, int64_t n,
                               int64_t block = 256) {
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    const int64_t b1 = std::min(n, b0 + block);
    float amax = 0.0f;
    for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(x[i]));
    absmax[b0 / block] = amax;
    if (amax == 0.0f) {
      std::fill(q + b0, q + b1, uint8_t(0));
      continue;
    }
    const float inv = 1.0f / amax;
    for (int64_t i = b0; i < b1; ++i) q[i] = lut[quant::lut8_index(x[i] * inv)];
  }
}
inline void dequantize_blockwise(const float* code, const uint8_t* q, const float* absmax, float* x, int64_t n,
                                 int64_t block = 256) {
  for (int64_t i = 0; i < n; ++i) x[i] = code[q[i]] * absmax[i / block];
}

// ------------------------------------------------------------------ paging

// Where a paged optimizer's state lives between updates. The CPU has nothing to page
// (NoPaging); a CUDA build supplies a pager that keeps states in host (or unified) memory
// and moves them to the GPU around each parameter's update.
struct StatePager {
  virtual ~StatePager() = default;
  virtual void prefetch(std::vector<Tensor*>& /*states*/) {}  // before the update: to the compute device
  virtual void release(std::vector<Tensor*>& /*states*/) {}   // after it: back to host memory
};

// ------------------------------------------------------------------ the optimizer

struct BnbAdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;     // bitsandbytes' default; the Trainer passes its own (0.0)
  int optim_bits = 8;             // 8: blockwise 8-bit states; 32: f32 states
  bool paged = false;
  int64_t min_8bit_size = 4096;   // smaller tensors keep f32 states
  int64_t block_size = 256;       // since bitsandbytes 0.44 (2048 before)
};

class BnbAdamW : public Optimizer {
 public:
  struct State {
    Tensor param;
    bool quantized = false;
    Tensor state1, state2;    // u8 codes (quantized) or f32 m, v — same shape as the parameter
    Tensor absmax1, absmax2;  // f32 (blocks), quantized only
    double weight_decay = 0;  // the parameter's group's
  };

  BnbAdamW(std::vector<Tensor> params, BnbAdamWOptions opt, std::shared_ptr<StatePager> pager = nullptr)
      : BnbAdamW(std::vector<ParamGroup>{{std::move(params), opt.weight_decay}}, opt, std::move(pager)) {}
  // Parameter groups (the Trainer's: no weight decay for biases and norms); each group's
  // weight_decay replaces opt.weight_decay for its parameters.
  BnbAdamW(std::vector<ParamGroup> groups, BnbAdamWOptions opt, std::shared_ptr<StatePager> pager = nullptr)
      : opt_(opt), qmap1_(dynamic_map(true)), qmap2_(dynamic_map(false)), lut1_(quant::build_lut8(qmap1_.data())),
        lut2_(quant::build_lut8(qmap2_.data())), pager_(std::move(pager)) {
    GALVANI_CHECK(opt.optim_bits == 8 || opt.optim_bits == 32, "BnbAdamW: optim_bits must be 8 or 32, got ",
                  opt.optim_bits);
    if (!pager_) pager_ = std::make_shared<StatePager>();
    for (ParamGroup& group : groups) {
      for (Tensor& p : group.params) {
        GALVANI_CHECK(p.dtype() == DType::f32, "BnbAdamW: parameter '", p.name(), "' is ", dtype_name(p.dtype()),
                      "; galvani's CPU optimizer updates f32 parameters");
        State s;
        s.param = p;
        s.weight_decay = group.weight_decay;
        s.quantized = opt.optim_bits == 8 && p.numel() >= opt.min_8bit_size;
        if (s.quantized) {
          const int64_t blocks = (p.numel() + opt.block_size - 1) / opt.block_size;
          s.state1 = Tensor::zeros(p.shape(), DType::u8);
          s.state2 = Tensor::zeros(p.shape(), DType::u8);
          s.absmax1 = Tensor::zeros({blocks}, DType::f32);
          s.absmax2 = Tensor::zeros({blocks}, DType::f32);
        } else {
          s.state1 = Tensor::zeros(p.shape(), DType::f32);
          s.state2 = Tensor::zeros(p.shape(), DType::f32);
        }
        states_.push_back(std::move(s));
      }
    }
  }

  std::string name() const override {
    if (opt_.optim_bits == 32) return opt_.paged ? "paged_adamw_32bit" : "adamw_32bit";
    return opt_.paged ? "paged_adamw_8bit" : "adamw_8bit";
  }
  double lr() const override { return opt_.lr; }
  void set_lr(double lr) override { opt_.lr = lr; }
  int64_t step_count() const override { return step_; }
  void zero_grad() override {
    for (State& s : states_) s.param.zero_grad();
  }
  const std::vector<State>& states() const { return states_; }
  std::vector<std::pair<std::string, Tensor>> named_state() const override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < states_.size(); ++i) {
      const State& s = states_[i];
      const std::string k = "state." + std::to_string(i) + ".";
      out.emplace_back(k + "state1", s.state1);
      out.emplace_back(k + "state2", s.state2);
      if (s.quantized) {
        out.emplace_back(k + "absmax1", s.absmax1);
        out.emplace_back(k + "absmax2", s.absmax2);
      }
    }
    return out;
  }
  void set_step_count(int64_t step) override { step_ = step; }
  const std::vector<float>& qmap1() const { return qmap1_; }
  const std::vector<float>& qmap2() const { return qmap2_; }

  void step() override {
    NoGradGuard no_grad;
    ++step_;
    for (State& s : states_) {
      if (!s.param.grad().defined()) continue;
      GALVANI_CHECK(s.param.is_contiguous(), "BnbAdamW: parameter '", s.param.name(), "' is not contiguous");
      std::vector<Tensor*> st = {&s.state1, &s.state2, &s.absmax1, &s.absmax2};
      pager_->prefetch(st);
      Tensor g = s.param.grad().contiguous();
      if (s.quantized) update_8bit(s, g);
      else update_32bit(s, g);
      pager_->release(st);
    }
  }

 private:
  void update_32bit(State& s, const Tensor& grad) {
    const int64_t n = s.param.numel();
    float* p = s.param.data<float>();
    const float* g = grad.data<float>();
    float* m = s.state1.data<float>();
    float* v = s.state2.data<float>();
    const double c1 = 1.0 - std::pow(opt_.beta1, double(step_)), c2 = std::sqrt(1.0 - std::pow(opt_.beta2, double(step_)));
    const float b1 = float(opt_.beta1), a1 = float(1.0 - opt_.beta1), b2 = float(opt_.beta2), a2 = float(1.0 - opt_.beta2);
    const float step_size = float(-opt_.lr * c2 / c1), eps_c2 = float(opt_.eps * c2);
    const float decay = float(1.0 - opt_.lr * s.weight_decay);
    for (int64_t i = 0; i < n; ++i) {
      m[i] = std::fmaf(g[i], a1, m[i] * b1);
      v[i] = std::fmaf(a2 * g[i], g[i], v[i] * b2);
      if (s.weight_decay > 0) p[i] *= decay;
      const float update = m[i] / (std::sqrt(v[i]) + eps_c2);
      p[i] = std::fmaf(update, step_size, p[i]);
    }
  }

  void update_8bit(State& s, const Tensor& grad) {
    const int64_t n = s.param.numel();
    std::vector<float> m(static_cast<size_t>(n)), v(static_cast<size_t>(n));  // the dequantized states, f32
    dequantize_blockwise(qmap1_.data(), s.state1.data<uint8_t>(), s.absmax1.data<float>(), m.data(), n, opt_.block_size);
    dequantize_blockwise(qmap2_.data(), s.state2.data<uint8_t>(), s.absmax2.data<float>(), v.data(), n, opt_.block_size);
    float* p = s.param.data<float>();
    const float* g = grad.data<float>();
    const double c1 = 1.0 - std::pow(opt_.beta1, double(step_)), c2 = std::sqrt(1.0 - std::pow(opt_.beta2, double(step_)));
    const float b1 = float(opt_.beta1), a1 = float(1.0 - opt_.beta1), b2 = float(opt_.beta2), a2 = float(1.0 - opt_.beta2);
    const float fc2 = float(c2), eps = float(opt_.eps), value = float(-opt_.lr / c1);
    const float decay = float(1.0 - opt_.lr * s.weight_decay);
    for (int64_t i = 0; i < n; ++i) {
      m[size_t(i)] = std::fmaf(g[i], a1, m[size_t(i)] * b1);
      v[size_t(i)] = std::fmaf(a2 * g[i], g[i], v[size_t(i)] * b2);
      const float denom = std::sqrt(v[size_t(i)]) / fc2 + eps;
      if (s.weight_decay > 0) p[i] *= decay;
      p[i] = p[i] + (value * m[size_t(i)]) / denom;
    }
    quantize_blockwise(lut1_, m.data(), s.state1.data<uint8_t>(), s.absmax1.data<float>(), n, opt_.block_size);
    quantize_blockwise(lut2_, v.data(), s.state2.data<uint8_t>(), s.absmax2.data<float>(), n, opt_.block_size);
  }

  BnbAdamWOptions opt_;
  std::vector<float> qmap1_, qmap2_;
  std::vector<uint8_t> lut1_, lut2_;  // the quantizer's tables for qmap1_, qmap2_
  std::shared_ptr<StatePager> pager_;
  std::vector<State> states_;
  int64_t step_ = 0;
};

// The Hugging Face Trainer's optimizers by their --optim names (TrainingArguments.optim):
//   adamw_torch        torch.optim.AdamW (the Trainer's default)
//   adamw_hf           transformers' legacy AdamW (ε before bias correction, decay after)
//   adamw_8bit         bitsandbytes AdamW, 8-bit states (bnb.optim.AdamW8bit)
//   paged_adamw_8bit   the same, paged (bnb.optim.PagedAdamW8bit)
//   paged_adamw_32bit  bitsandbytes AdamW, f32 states, paged (the QLoRA recipe's)
inline std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                                 const AdamWOptions& o, std::shared_ptr<StatePager> pager = nullptr) {
  if (name == "adamw_torch" || name == "adamw_hf") {
    AdamWOptions a = o;
    a.legacy_hf = name == "adamw_hf";
    return std::make_unique<TorchAdamW>(std::move(groups), a);
  }
  BnbAdamWOptions b;
  b.lr = o.lr;
  b.beta1 = o.beta1;
  b.beta2 = o.beta2;
  b.eps = o.eps;
  b.weight_decay = o.weight_decay;
  if (name == "adamw_8bit" || name == "adamw_bnb_8bit") b.optim_bits = 8;
  else if (name == "paged_adamw_8bit") b.optim_bits = 8, b.paged = true;
  else if (name == "paged_adamw_32bit") b.optim_bits = 32, b.paged = true;
  else
    throw Error("--optim \"" + name +
                "\" is not one galvani has (adamw_torch, adamw_hf, adamw_8bit, paged_adamw_8bit, paged_adamw_32bit)");
  return std::make_unique<BnbAdamW>(std::move(groups), b, std::move(pager));
}
// One group: every parameter with o.weight_decay.
inline std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                                 const AdamWOptions& o, std::shared_ptr<StatePager> pager = nullptr) {
  return make_optimizer(name, std::vector<ParamGroup>{{std::move(params), o.weight_decay}}, o, std::move(pager));
}

}  // namespace galvani
