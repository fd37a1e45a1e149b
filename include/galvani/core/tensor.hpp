// core/tensor.hpp — Tensor, complete: include this (or galvani.hpp) to use tensors.
//
// The Tensor handle itself lives in core/tensor_base.hpp; its methods are defined by the
// layer that owns their machinery. This umbrella includes them in dependency order:
//   tensor_base   the handle: metadata, empty(), from_blob(), raw views, autograd slot
//   dispatch      the per-op device/dtype dispatch every kernel call goes through
//   tensor_data   fills, copy_into, copy_between_devices, host_values, item, to_vector
//   reduce        sum_kernel and sum_to (the gradient of broadcasting)
//   autograd/     Node, record(), backward()
//   ops/shape     the differentiable views and copies: view, transpose, …, to(dtype/device)
#pragma once

#include "tensor_base.hpp"
#include "dispatch.hpp"
#include "tensor_data.hpp"
#include "reduce.hpp"
#include "broadcast.hpp"
#include "../autograd/node.hpp"
#include "../autograd/engine.hpp"
#include "../ops/shape.hpp"
