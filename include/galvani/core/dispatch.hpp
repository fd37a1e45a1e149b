// core/dispatch.hpp — the one place where an op chooses the kernel that runs.
//
// Every op's compute goes through one call:
//
//   dispatch("layer_norm", {{"input", x}, {"weight", w}, {"bias", b}}, FloatTypes{x.dtype()},
//            [&]<class T>() { layer_norm_forward<T>(…); });        // the CPU kernel
//            /* , [&]<class T>() { launch_layer_norm<T>(…); } */  // a CUDA launcher, when one exists
//
// which does, in order:
//   1. device: every defined input must be on one device, else an error that names the op
//      and each input's device ("layer_norm: inputs are on different devices: input cpu,
//      weight cuda:0"); galvani never copies between devices behind the user's back;
//   2. kernel: the CPU kernel on the CPU, the CUDA launcher on a GPU; an op that has no
//      kernel for the device is an error naming both ("rms_norm has no kernel for cuda:0"),
//      never a silent read of device memory on the host;
//   3. profiling: while a profiler::Profile records (core/profiler.hpp), the kernel's wall time
//      is an event named `op` (one relaxed atomic load otherwise);
//   4. dtype: the kernel is a template over the element type and is instantiated for the
//      dtypes its tag names — FloatTypes (f32, f64), IndexTypes (i32, i64) or AllTypes —
//      through visit_float / visit_index / visit_dtype (core/dtype.hpp), whose errors name
//      the op ("exp: expected a f32 or f64 tensor, got i64 …").
// An op with two dtype parameters (embedding: float weight, index ids) dispatches on one
// and visits the other inside its kernel lambda.
#pragma once
#include <initializer_list>
#include <string>
#include <type_traits>

#include "device.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "record_function.hpp"  // profiler::RecordFunction (the Profile itself: profiler.hpp)
#include "tensor_base.hpp"

namespace galvani {

// One input of an op, named as the op's error messages name it. Undefined tensors
// (an absent bias) are skipped.
struct OpInput {
  const char* name;
  const Tensor& tensor;
};

// The dtypes a kernel is written for, and the dtype to instantiate it with.
struct FloatTypes { DType dtype; };  // f32 (work), f64 (gradient checks)
struct IndexTypes { DType dtype; };  // i32, i64 (token ids, labels, positions)
struct AllTypes { DType dtype; };    // every DType (copies, fills)

// The "no kernel for this device" placeholder: the default CUDA launcher.
struct NoKernel {};

// The device all defined `inputs` share (cpu when none is defined). Throws galvani::Error
// naming `op` and every input's device when they differ.
inline Device common_device(const char* op, std::initializer_list<OpInput> inputs) {
  const Tensor* first = nullptr;
  bool mixed = false;
  for (const OpInput& in : inputs) {
    if (!in.tensor.defined()) continue;
    if (!first) first = &in.tensor;
    else if (in.tensor.device() != first->device()) mixed = true;
  }
  if (mixed) {
    std::string list;
    for (const OpInput& in : inputs)
      if (in.tensor.defined()) list += (list.empty() ? "" : ", ") + std::string(in.name) + " " + in.tensor.device().str();
    throw Error(detail::cat(op, ": inputs are on different devices: ", list,
                            " (move them to one device with .to(device))"));
  }
  return first ? first->device() : Device::cpu();
}

namespace detail {
template <class F> decltype(auto) visit_types(FloatTypes t, const char* op, F&& f) { return visit_float(t.dtype, op, f); }
template <class F> decltype(auto) visit_types(IndexTypes t, const char* op, F&& f) { return visit_index(t.dtype, op, f); }
template <class F> decltype(auto) visit_types(AllTypes t, const char* op, F&& f) { return visit_dtype(t.dtype, op, f); }
}  // namespace detail

// Checks that `inputs` share a device, then runs `cpu.template operator()<T>()` (CPU) or
// `cuda.template operator()<T>()` (CUDA), T the C++ type of `types.dtype`. Returns what
// the kernel returns. Throws galvani::Error for mixed devices, a device without a kernel
// for this op, or a dtype outside `types`.
template <class Types, class Cpu, class Cuda = NoKernel>
decltype(auto) dispatch(const char* op, std::initializer_list<OpInput> inputs, Types types, Cpu&& cpu,
                        Cuda&& cuda = NoKernel{}) {
  profiler::RecordFunction scope(op);
  const Device device = common_device(op, inputs);
  if (device.is_cpu()) return detail::visit_types(types, op, cpu);
  if constexpr (!std::is_same_v<std::remove_cvref_t<Cuda>, NoKernel>) {
    if (device.is_cuda()) return detail::visit_types(types, op, cuda);
  }
  throw Error(detail::cat(op, " has no kernel for ", device.str()));
}

}  // namespace galvani
