#!/usr/bin/env python3
"""Reference results for galvani's Mistral/Llama, from the real Hugging Face stack.

Writes two fixture directories:
  tests/fixtures/mistral/   a small random MistralForCausalLM: GQA (4 heads, 2 kv heads),
                            sliding window 8 on sequences of 24 (so the window matters),
                            untied lm_head, rope_theta 1000, saved in shards (exercises the index)
  tests/fixtures/llama/     a small random LlamaForCausalLM: tied embeddings, no window,
                            attention_bias and mlp_bias, head_dim (16) != hidden/heads (12),
                            pad_token_id 0, also at a real position (nn.Embedding's padding_idx:
                            the lookup sends no gradient to that row)
Each holds:
  config.json, model*.safetensors  the model, as save_pretrained writes it (f32)
  reference.safetensors            input_ids, attention_mask, labels, logits, loss, every
                                   parameter gradient ("grad.<name>"); for mistral also the
                                   logits with sliding_window 7, 9 and None ("logits.window<w>")
  reference.json                   greedy generate() tokens (prompt + 20 > window), versions

The reference runs the eager attention path in eval mode (no dropout), so the sliding-window
mask is transformers' own masking_utils.sliding_window_overlay: key j is visible to query i
when i - sliding_window < j <= i.

Run (needs torch, transformers, safetensors; CI only reads the committed files):
  ../refenv/bin/python tools/gen_mistral_fixtures.py
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
T = 24          # sequence length of the batch (> sliding window)
PROMPT = [5, 17, 42, 8, 61, 3]
NEW_TOKENS = 20


def batch(vocab, pad, seed):
    """Two rows of T tokens; the second right-padded from position 18, as the collator pads."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, T), generator=g)
    mask = torch.ones(2, T, dtype=torch.long)
    ids[1, 18:] = pad
    mask[1, 18:] = 0
    labels = ids.clone()
    labels[mask == 0] = -100
    return ids, mask, labels


def reference(model, ids, mask, labels):
    model.eval()  # no dropout
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    tensors = {"input_ids": ids, "attention_mask": mask, "labels": labels,
               "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().contiguous()
    return out, tensors


def greedy(cls, out_dir, pad):
    fresh = cls.from_pretrained(out_dir, attn_implementation="eager")
    fresh.eval()
    gen = fresh.generate(torch.tensor([PROMPT]), max_new_tokens=NEW_TOKENS, do_sample=False,
                         pad_token_id=pad, eos_token_id=None)  # no early stop: all 20 tokens
    return gen[0, len(PROMPT):].tolist()


def write(out_dir, tensors, extra):
    save_file(tensors, os.path.join(out_dir, "reference.safetensors"))
    ref = {"transformers": transformers.__version__, "torch": torch.__version__,
           "generate_prompt": PROMPT}
    ref.update(extra)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote", out_dir, file=sys.stderr)


def mistral():
    out_dir = os.path.join(ROOT, "mistral")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    cfg = MistralConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                        rms_norm_eps=1e-5, rope_theta=1000.0, sliding_window=8,
                        initializer_range=0.15,  # larger weights: varied greedy tokens
                        bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False)
    model = MistralForCausalLM(cfg)
    model.config._attn_implementation = "eager"
    model.save_pretrained(out_dir, max_shard_size="100KB")  # several shards + the index
    ids, mask, labels = batch(cfg.vocab_size, pad=2, seed=1)  # pad = eos, as the course does
    out, tensors = reference(model, ids, mask, labels)

    # The same weights with other windows: the convention check. Window 7 and 9 must give
    # different logits from window 8, or the fixture would not pin the off-by-one.
    with torch.no_grad():
        for w in (7, 9, None):
            model.config.sliding_window = w
            lw = model(input_ids=ids, attention_mask=mask).logits
            assert not torch.allclose(lw, out.logits, atol=1e-4), f"window {w} does not change the logits"
            tensors[f"logits.window{w if w else 'none'}"] = lw.contiguous()
        model.config.sliding_window = 8

    tokens = greedy(MistralForCausalLM, out_dir, pad=2)
    write(out_dir, tensors, {"loss": out.loss.item(), "generate_new_tokens": tokens})


def llama():
    out_dir = os.path.join(ROOT, "llama")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=80, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                      rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=True, mlp_bias=True,
                      initializer_range=0.15, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.config._attn_implementation = "eager"
    # Biases start at zero; give them values so their gradients and effect are tested.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.1)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(out_dir)
    ids, mask, labels = batch(cfg.vocab_size, pad=0, seed=2)
    # The pad id also inside a real (attended, labelled) position: nn.Embedding(padding_idx=0)
    # gives its lookup no gradient, which only shows where the position reaches the loss
    # (right padding itself never does).
    ids[0, 5] = 0
    labels[0, 5] = 0
    out, tensors = reference(model, ids, mask, labels)
    assert (tensors["grad.model.embed_tokens.weight"][0] != 0).any()  # lm_head's share reaches row 0
    tokens = greedy(LlamaForCausalLM, out_dir, pad=0)
    write(out_dir, tensors, {"loss": out.loss.item(), "generate_new_tokens": tokens})


def main():
    mistral()
    llama()


if __name__ == "__main__":
    main()
