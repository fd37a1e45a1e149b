// galvani.hpp — everything CPU-side in one include.
//
// A five-minute tour:
//
//   using namespace galvani;
//   Generator gen(0);
//   Tensor x = rand_normal({4, 3}, 0, 1, gen);                // data: (B=4, in=3)
//   Tensor w = rand_normal({2, 3}, 0, 0.1, gen).requires_grad_();  // a Linear weight (out=2, in=3)
//   Tensor y = linear(x, w);                                  // y = x·wᵀ, shape (4, 2)
//   Tensor loss = mean(y * y);                                // a scalar
//   loss.backward();                                          // fills w.grad(), shape (2, 3)
//
// Where things live (each layer uses only the ones above it):
//   core/      DType, Device, allocators and Storage, Tensor (shape/strides/offset views),
//              dispatch (one device/dtype choice per op), host_values (reading on the host),
//              RNG, printing
//   autograd/  Node, record(), the backward engine, NoGradGuard, checkpoint()
//   ops/       one header per op family: forward kernel, backward kernel, autograd glue
//   nn/ models/ io/ tokenizer/ data/ optim/ train/ eval/  — the layers that build on these
#pragma once

#include "core/error.hpp"
#include "core/profiler.hpp"
#include "core/dtype.hpp"
#include "core/device.hpp"
#include "core/allocator.hpp"
#include "core/storage.hpp"
#include "core/tensor.hpp"
#include "core/broadcast.hpp"
#include "core/random.hpp"
#include "core/print.hpp"
#include "core/paths.hpp"
#include "core/memory.hpp"
#include "core/autocast.hpp"

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "autograd/engine.hpp"
#include "autograd/checkpoint.hpp"

#include "ops/shape.hpp"
#include "ops/elementwise.hpp"
#include "ops/reduction.hpp"
#include "ops/matmul.hpp"
#include "ops/softmax.hpp"
#include "ops/layer_norm.hpp"
#include "ops/rms_norm.hpp"
#include "ops/activation.hpp"
#include "ops/embedding.hpp"
#include "ops/cross_entropy.hpp"
#include "ops/dropout.hpp"
#include "ops/attention.hpp"
#include "ops/rope.hpp"
#include "ops/autocast.hpp"

#include "nn/module.hpp"
#include "nn/layers.hpp"
#include "models/causal_lm.hpp"
#include "models/gpt2.hpp"
#include "models/mistral.hpp"
#include "nn/target_modules.hpp"
#include "nn/lora.hpp"
#include "models/peft.hpp"
#include "optim/adamw.hpp"
#include "optim/clip_grad.hpp"
#include "optim/grad_scaler.hpp"
#include "optim/lr_schedule.hpp"
#include "eval/perplexity.hpp"
#include "eval/generate.hpp"
#include "train/progress.hpp"
#include "train/trainer.hpp"
