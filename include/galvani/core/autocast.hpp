// core/autocast.hpp — torch.autocast on the CPU: the state that says which precision the
// matrix products run in. The ops that read it are in ops/autocast.hpp.
//
//   {
//     AutocastGuard amp(DType::bf16);        // with torch.autocast("cpu", dtype=torch.bfloat16):
//     Tensor loss = model.forward(ids) ...   //     loss = model(ids).loss
//   }
//   loss.backward();                          // outside, as in torch: the graph remembers
//
// Inside an enabled region, the ops on torch's CPU autocast "lower precision" list that galvani
// has — linear (and GPT-2's Conv1D), matmul, scaled_dot_product_attention, and the 4-bit linear
// (bitsandbytes casts its input to the compute dtype) — take f32 inputs, run on them rounded to
// bf16 (or f16), and return their result rounded to bf16/f16; their backward rounds the incoming
// gradient the same way and returns the rounded gradients. Every other op computes in f32, as
// torch's autocast leaves them (the residual stream, norms, softmax, the loss).
//
// One difference from torch, in storage only: galvani's elementwise ops compute in f32, so a
// lower-precision op's result is an f32 tensor that holds bf16 (or f16) values — the values
// torch's bf16 tensor holds, read the way torch's next op reads them (widened). An op after it
// that torch would run in bf16 (gelu, silu, RoPE on q/k) is therefore not rounded again here.
// The products are f32 GEMMs of the 2-byte operands widened (exact), with f32 sums, as oneDNN's
// bf16 GEMM on a CPU without AVX512-BF16; a linear's saved input is the 2-byte copy.
//
// State is per thread, like torch's. Casts of a weight (a leaf that requires grad) are made
// once per outermost enabled region and reused (torch's autocast weight cache); the cache is
// emptied when the outermost guard closes.
#pragma once
#include <memory>
#include <unordered_map>
#include <utility>

#include "dtype.hpp"
#include "error.hpp"
#include "tensor_base.hpp"

namespace galvani {

namespace detail {
struct AutocastState {
  bool enabled = false;
  DType dtype = DType::bf16;
  int depth = 0;  // open AutocastGuards, enabled or not
  // A weight's impl → (the impl, kept alive so its address is not reused; its cast).
  std::unordered_map<const void*, std::pair<std::shared_ptr<TensorImpl>, Tensor>> cache;
};
inline AutocastState& autocast_state() {
  thread_local AutocastState s;
  return s;
}
}  // namespace detail

// torch.is_autocast_enabled("cpu"): whether this thread is inside an enabled AutocastGuard.
inline bool is_autocast_enabled() { return detail::autocast_state().enabled; }
// torch.get_autocast_dtype("cpu"): bf16 (torch's CPU default) or f16.
inline DType get_autocast_dtype() { return detail::autocast_state().dtype; }

// RAII: torch.autocast(device_type="cpu", dtype=dtype, enabled=enabled) for this scope, restored
// after it. enabled=false inside an enabled region switches autocast off there (torch's nested
// autocast(enabled=False)). Error: dtype is not bf16 or f16.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype = DType::bf16, bool enabled = true) {
    GALVANI_CHECK(dtype == DType::bf16 || dtype == DType::f16, "autocast: dtype ", dtype_name(dtype),
                  " is not a lower-precision type; use bf16 or f16 (torch.autocast's dtype)");
    detail::AutocastState& s = detail::autocast_state();
    prev_enabled_ = s.enabled;
    prev_dtype_ = s.dtype;
    s.enabled = enabled;
    s.dtype = dtype;
    ++s.depth;
  }
  ~AutocastGuard() {
    detail::AutocastState& s = detail::autocast_state();
    s.enabled = prev_enabled_;
    s.dtype = prev_dtype_;
    if (--s.depth == 0) s.cache.clear();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

}  // namespace galvani
