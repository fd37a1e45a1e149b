#!/usr/bin/env python3
"""Tied checkpoints saved under one name (issue [bug-reports] 1), with transformers' logits.

safetensors.torch.save_model() writes each group of shared tensors once and records the other
names in __metadata__ ({removed: kept}). For a tied GPT-2 it keeps lm_head.weight and records
transformer.wte.weight -> lm_head.weight; for a tied Llama, model.embed_tokens.weight ->
lm_head.weight. transformers loads both and gives the original logits. Each directory here
holds config.json and such a model.safetensors; reference.json holds the input ids, the
logits transformers computes from the directory, and what the file's header says.

    ../refenv/bin/python tools/gen_tied_fixtures.py   # -> tests/fixtures/tied/
"""
import json
import pathlib

import safetensors
import safetensors.torch
import torch
import transformers
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tied"
IDS = [[5, 17, 42, 8, 3, 9, 1, 30]]


def write(name, model):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    model.config.save_pretrained(d)
    safetensors.torch.save_model(model, str(d / "model.safetensors"))
    with safetensors.safe_open(str(d / "model.safetensors"), "pt") as f:
        keys, metadata = sorted(f.keys()), f.metadata()
    loaded = AutoModelForCausalLM.from_pretrained(d).eval()  # what a user of transformers gets
    with torch.no_grad():
        logits = loaded(torch.tensor(IDS)).logits
        original = model.eval()(torch.tensor(IDS)).logits
    assert torch.equal(logits, original), "transformers does not reproduce the saved model"
    # What transformers itself writes for this tied model (save_pretrained keeps one name).
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        loaded.save_pretrained(tmp)
        with safetensors.safe_open(str(pathlib.Path(tmp) / "model.safetensors"), "pt") as f:
            save_pretrained_keys = sorted(f.keys())
    (d / "reference.json").write_text(json.dumps({
        "save_pretrained_keys": save_pretrained_keys,
        "generator": "tools/gen_tied_fixtures.py",
        "versions": {"transformers": transformers.__version__, "safetensors": safetensors.__version__},
        "tensors_in_file": keys, "metadata": metadata,
        "input_ids": IDS, "logits": logits[0].flatten().tolist(), "logits_shape": list(logits.shape),
    }) + "\n")
    print(f"{d}: {len(keys)} tensors, metadata {metadata}")


def main():
    torch.manual_seed(0)
    write("gpt2_save_model", GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64,
                                                        n_positions=32, bos_token_id=0, eos_token_id=0)))
    write("llama_save_model", LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                                                           num_key_value_heads=1, intermediate_size=32, vocab_size=64,
                                                           max_position_embeddings=64, tie_word_embeddings=True)))


if __name__ == "__main__":
    main()
