#!/usr/bin/env python3
"""Reference answers for generation defaults: which settings transformers' generate() takes
from generation_config.json, from config.json and from the call, and where it stops.

Writes tests/fixtures/generation/:
  llama/model.safetensors   a tiny random LlamaForCausalLM (vocab 8000, hidden 8, untied head), its
                            rows permuted so that greedy decoding of PROMPT emits token 7655
                            at the 4th step: the case of issue #11 ("eos_token_id: [2, 7655]")
  gpt2/model.safetensors    a tiny random GPT2LMHeadModel (vocab 1000, 32 positions)
  cases.json                per case: the model, config.json and generation_config.json (null:
                            no such file) as written, the generate() keyword arguments, the
                            prompt, and transformers' new tokens (greedy, batch 1)

Each case is run the way a user would: save the files into a directory, load it with
from_pretrained (which reads generation_config.json, or derives one from config.json), call
generate(). tests/test_generation_config.cpp writes the same files and checks that galvani's
generation_options() + generate() give the same tokens.

Run (needs torch, transformers, safetensors; CI only reads the committed files):
  ../refenv/bin/python tools/gen_generation_fixtures.py
"""
import copy
import json
import os
import shutil
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "generation")
PROMPT = [1, 305, 4012, 77, 5120]   # starts with bos 1, as Llama's tokenizer would
GPT2_PROMPT = [17, 300, 5, 912]
TARGET = 7655                       # the second EOS of the issue
STEP = 3                            # greedy emits TARGET as its 4th new token


def llama_model():
    for seed in range(100):  # the first seed whose greedy walk does not loop early
        m = llama_try(seed)
        if m is not None:
            return m
    raise SystemExit("no seed gave a usable greedy walk")


def llama_try(seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=8000, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    m = LlamaForCausalLM(cfg).eval()
    # Greedy from PROMPT without stopping; swap the 4th token's rows with TARGET's. The model is
    # equivariant under a permutation of the vocabulary (input embedding rows and lm_head rows
    # swapped together), so the same walk now emits TARGET at that step.
    with torch.no_grad():
        out = m.generate(torch.tensor([PROMPT]), max_new_tokens=STEP + 1, do_sample=False, eos_token_id=None,
                         pad_token_id=0)[0, len(PROMPT):].tolist()
        t = out[STEP]
        if t in PROMPT or TARGET in PROMPT or t in out[:STEP] or TARGET in out or 2 in out or len(set(out)) < 4:
            return None
        for w in (m.model.embed_tokens.weight, m.lm_head.weight):
            w[[t, TARGET]] = w[[TARGET, t]]
    return m


def gpt2_model():
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=1000, n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
                     eos_token_id=0)
    m = GPT2LMHeadModel(cfg).eval()
    return m


def model_config(m, **over):
    """config.json as save_pretrained writes it, with some keys replaced."""
    d = tempfile.mkdtemp()
    m.config.save_pretrained(d)
    with open(os.path.join(d, "config.json")) as f:
        j = json.load(f)
    shutil.rmtree(d)
    j.update(over)
    return j


def run_case(model_name, weights, config, generation_config, kwargs, prompt):
    d = tempfile.mkdtemp()
    try:
        shutil.copy(weights, os.path.join(d, "model.safetensors"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        if generation_config is not None:
            with open(os.path.join(d, "generation_config.json"), "w") as f:
                json.dump(generation_config, f)
        m = AutoModelForCausalLM.from_pretrained(d).eval()
        with torch.no_grad():
            out = m.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             **kwargs)
        return out[0, len(prompt):].tolist()
    finally:
        shutil.rmtree(d)


def main():
    os.makedirs(os.path.join(ROOT, "llama"), exist_ok=True)
    os.makedirs(os.path.join(ROOT, "gpt2"), exist_ok=True)
    llama, gpt2 = llama_model(), gpt2_model()
    lw, gw = os.path.join(ROOT, "llama", "model.safetensors"), os.path.join(ROOT, "gpt2", "model.safetensors")
    save_file({k: v.contiguous() for k, v in llama.state_dict().items()}, lw,
              metadata={"format": "pt"})
    save_file({k: v.contiguous() for k, v in gpt2.state_dict().items()
               if k != "lm_head.weight" and not k.endswith(".attn.bias")}, gw, metadata={"format": "pt"})

    L = model_config(llama)                      # eos_token_id: 2
    G = model_config(gpt2)                       # eos_token_id: 0
    cases = [
        # name, model, config.json, generation_config.json, generate() kwargs, what it shows
        ("issue11_eos_list_only_in_generation_config", "llama", L,
         {"bos_token_id": 1, "eos_token_id": [2, TARGET]}, {"max_new_tokens": 20},
         "config.json eos 2, generation_config.json eos [2, 7655]: stops after 7655"),
        ("eos_list_in_config_json_no_generation_config", "llama", dict(L, eos_token_id=[2, TARGET]), None,
         {"max_new_tokens": 20}, "the list in config.json, no generation_config.json: derived, stops"),
        ("eos_int_in_generation_config", "llama", L, {"eos_token_id": TARGET}, {"max_new_tokens": 20},
         "eos as a plain int in generation_config.json"),
        ("eos_not_hit_runs_to_max_new_tokens", "llama", L, {"eos_token_id": 2}, {"max_new_tokens": 12},
         "eos 2 never comes: all 12 tokens"),
        ("generation_config_max_new_tokens", "llama", L, {"eos_token_id": 2, "max_new_tokens": 7}, {},
         "max_new_tokens from the file"),
        ("generation_config_max_length_counts_prompt", "llama", L, {"eos_token_id": 2, "max_length": 9}, {},
         "max_length 9 with a 5-token prompt: 4 new tokens"),
        ("max_new_tokens_wins_over_max_length", "llama", L, {"eos_token_id": 2, "max_length": 9, "max_new_tokens": 11},
         {}, "both in the file: max_new_tokens decides"),
        ("no_length_anywhere_default_max_length_20", "llama", L, {"eos_token_id": 2}, {},
         "neither set: transformers' default, 20 new tokens (not max_length 20)"),
        ("call_overrides_file", "llama", L, {"eos_token_id": 2, "max_new_tokens": 4}, {"max_new_tokens": 9},
         "the caller's max_new_tokens beats the file's"),
        ("repetition_penalty_from_file", "llama", L, {"eos_token_id": 2, "repetition_penalty": 1.5},
         {"max_new_tokens": 15}, "greedy with the file's repetition penalty (this walk has no repeats: same tokens)"),
        ("do_sample_false_ignores_sampling_keys", "llama", L,
         {"eos_token_id": 2, "do_sample": False, "temperature": 0.3, "top_k": 3, "top_p": 0.5}, {"max_new_tokens": 10},
         "do_sample false: temperature/top_k/top_p change nothing"),
        ("call_eos_overrides_file_list", "llama", L, {"eos_token_id": [2, TARGET]}, {"max_new_tokens": 10,
         "eos_token_id": 2}, "the caller's eos_token_id replaces the file's list"),
        ("gpt2_eos_list_in_generation_config", "gpt2", G, None, {"max_new_tokens": 16}, "placeholder"),
        ("gpt2_repetition_penalty_from_file", "gpt2", G, {"eos_token_id": 0, "repetition_penalty": 2.0},
         {"max_new_tokens": 10}, "GPT-2 loops on one token greedily; the file's penalty breaks the loop"),
        ("gpt2_max_length_from_file", "gpt2", G, {"bos_token_id": 0, "eos_token_id": 0, "max_length": 10}, {},
         "GPT-2, max_length 10 with a 4-token prompt: 6 new tokens"),
    ]
    # The GPT-2 EOS-list case: make the list's second id the 2nd token greedy emits.
    free = run_case("gpt2", gw, G, {"eos_token_id": 0}, {"max_new_tokens": 16}, GPT2_PROMPT)
    second = free[1]
    assert second not in free[:1] and 0 not in free[:2], free
    cases[-3] = ("gpt2_eos_list_in_generation_config", "gpt2", G, {"bos_token_id": 0, "eos_token_id": [0, second]},
                 {"max_new_tokens": 16}, f"GPT-2, config.json eos 0, generation_config.json eos [0, {second}]")

    out = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": []}
    for name, model, config, gen, kwargs, what in cases:
        prompt = PROMPT if model == "llama" else GPT2_PROMPT
        got = run_case(model, lw if model == "llama" else gw, config, gen, dict(kwargs), prompt)
        out["cases"].append({"name": name, "what": what, "model": model, "config": config, "generation_config": gen,
                             "kwargs": kwargs, "prompt": prompt, "new_tokens": got})
        print(f"{name}: {got}")
    # Sanity: the case stops at TARGET, the config-only list does too.
    assert out["cases"][0]["new_tokens"][-1] == TARGET and len(out["cases"][0]["new_tokens"]) == STEP + 1
    assert out["cases"][1]["new_tokens"] == out["cases"][0]["new_tokens"]
    with open(os.path.join(ROOT, "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
