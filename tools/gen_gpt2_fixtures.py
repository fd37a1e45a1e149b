#!/usr/bin/env python3
"""Reference results for galvani's GPT-2, from the real Hugging Face stack.

Writes tests/fixtures/gpt2/:
  config.json, model.safetensors   a small random GPT2LMHeadModel, saved by save_pretrained
  reference.safetensors            inputs, logits, loss, every parameter gradient ("grad.<name>"),
                                   and every parameter after one torch.optim.AdamW step ("adamw.<name>")
  reference.json                   greedy generate() tokens, LR-schedule values, scalars

Run (needs torch, transformers, safetensors; not needed by CI, which reads the committed files):
  python3 -m venv ../refenv && ../refenv/bin/pip install torch transformers safetensors
  ../refenv/bin/python tools/gen_gpt2_fixtures.py
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, get_linear_schedule_with_warmup

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "gpt2")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=101, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0,
                     initializer_range=0.3)  # larger weights: varied greedy tokens
    model = GPT2LMHeadModel(cfg)
    model.config._attn_implementation = "eager"
    model.save_pretrained(OUT, safe_serialization=True)

    # A right-padded batch of two rows, as the course's collator makes it (pad = eos = 0).
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 101, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.long)
    ids[1, 9:] = 0
    mask[1, 9:] = 0
    labels = ids.clone()
    labels[labels == 0] = -100

    model.eval()  # no dropout, so the result is deterministic
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    tensors = {"input_ids": ids, "attention_mask": mask, "labels": labels,
               "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().contiguous()

    # One AdamW step on those gradients (torch semantics, with weight decay).
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    opt.step()
    for name, p in model.named_parameters():
        tensors["adamw." + name] = p.detach().clone().contiguous()
    save_file(tensors, os.path.join(OUT, "reference.safetensors"))

    # LR schedule: the multiplier of each update, warmup 3 of 10 steps.
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = get_linear_schedule_with_warmup(dummy, num_warmup_steps=3, num_training_steps=10)
    lrs = []
    for _ in range(12):
        lrs.append(dummy.param_groups[0]["lr"])
        dummy.step()
        sched.step()

    # Greedy generation with the KV cache, from the freshly saved weights.
    fresh = GPT2LMHeadModel.from_pretrained(OUT)
    fresh.eval()
    prompt = [5, 17, 42, 8]
    gen = fresh.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False, pad_token_id=0)
    ref = {
        "transformers": __import__("transformers").__version__, "torch": torch.__version__,
        "loss": out.loss.item(),
        "linear_schedule_warmup3_total10": lrs,
        "generate_prompt": prompt,
        "generate_new_tokens": gen[0, len(prompt):].tolist(),
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
