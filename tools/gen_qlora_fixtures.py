#!/usr/bin/env python3
"""QLoRA fixtures: peft's LoRA over a 4-bit (NF4, double-quantized) base, from transformers +
bitsandbytes + peft on the CPU, for tests/test_lora.cpp.

    ../refenv/bin/python tools/gen_qlora_fixtures.py

The float bases are the nf4 model fixtures' (tests/fixtures/nf4/<arch>/f32, written by
tools/gen_nf4_model_fixtures.py; every linear layer's input size is a multiple of 64, which
bnb 0.50.2's AVX-512 CPU dequantizer needs). Each is loaded as the course loads Mistral:

    from_pretrained(f32/, quantization_config=BitsAndBytesConfig(load_in_4bit, nf4, double quant,
                    compute dtype float32), device_map="cpu", dtype=float32)
    prepare_model_for_kbit_training(model)     # default: gradient checkpointing on
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0, ...))

    gpt2:     peft's default targets (["c_attn"], a Conv1D: fan_in_fan_out; bnb quantizes its
              weight transposed to (out, in)); the base's dropouts set to 0 at load
    mistral:  target_modules "all-linear" (7 per layer), attention_dropout 0 in its config

lora_B (zero at init) is set to seeded random values, so the gradients of both A and B are
non-zero. The forward/backward runs in *train* mode — transformers' gradient checkpointing and
bnb's training path (MatMul4Bit: dequantize_4bit, then F.linear; dX = dY · dequant(W)) are
what run, and no dropout is left to draw a mask. Every Linear4bit gets
support_avx512bf16_for_cpu = False all the same: in eval mode with a no-grad input bnb would
otherwise repack the weight in place and multiply in bf16.

Under tests/fixtures/lora/qlora_<arch>/ it writes:
    adapter/          peft's save_pretrained (adapter_config.json, adapter_model.safetensors)
    ref.safetensors   input_ids, labels (-100 at a few places), logits, loss, and the gradient
                      of every LoRA weight under its saved key + ".grad"
    ref.json          the quantization_config transformers records; the SHA-256 of every 4-bit
                      tensor of transformers' quantized state dict (taken before any forward);
                      peft's print_trainable_parameters() line; the wrapped modules; the
                      module tree under layer 0
The 4-bit tensors are also checked here to be byte-identical to the nf4 fixture's bnb4/ file.
"""
import contextlib
import hashlib
import io
import json
import pathlib

import bitsandbytes
import peft
import torch
import transformers
from bitsandbytes.nn import Linear4bit
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
NF4 = ROOT / "tests" / "fixtures" / "nf4"
OUT = ROOT / "tests" / "fixtures" / "lora"
T = 12


def bnb_config():
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32)


def lora_config(arch):
    if arch == "gpt2":
        return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM")
    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def quantized_tensors(model):
    """The 4-bit tensors of the quantized state dict (packed weight, absmax, nested absmax, ...)."""
    return {k: v.contiguous() for k, v in model.state_dict().items()
            if ".weight." in k or (k.endswith(".weight") and v.dtype == torch.uint8)}


def main():
    for seed, arch in enumerate(["gpt2", "mistral"]):
        torch.manual_seed(100 + seed)
        overrides = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0} if arch == "gpt2" else {}
        model = AutoModelForCausalLM.from_pretrained(NF4 / arch / "f32", quantization_config=bnb_config(),
                                                     device_map="cpu", dtype=torch.float32, **overrides)
        q = quantized_tensors(model)
        bnb4 = load_file(NF4 / arch / "bnb4" / "model.safetensors")
        for k, v in q.items():  # the same bytes as the nf4 fixture's 4-bit checkpoint
            assert torch.equal(v.view(torch.uint8), bnb4[k].contiguous().view(torch.uint8)), k
        hashes = {k: hashlib.sha256(v.view(torch.uint8).numpy().tobytes()).hexdigest() for k, v in sorted(q.items())}
        qcfg = model.config.quantization_config.to_dict()
        for m in model.modules():
            if isinstance(m, Linear4bit):
                m.support_avx512bf16_for_cpu = False

        model = prepare_model_for_kbit_training(model)  # all f32 already: freezes, checkpointing on
        model = get_peft_model(model, lora_config(arch))
        # peft records the base's name_or_path, here an absolute path: keep the repository's.
        model.peft_config["default"].base_model_name_or_path = f"tests/fixtures/nf4/{arch}/f32"
        g = torch.Generator().manual_seed(7 + seed)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        d = OUT / f"qlora_{arch}"
        model.save_pretrained(d / "adapter")
        (d / "adapter" / "README.md").unlink()  # peft's model card: not part of the format
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            model.print_trainable_parameters()

        model.train()
        assert model.base_model.model.is_gradient_checkpointing
        ids = torch.randint(0, model.config.vocab_size, (2, T), generator=g)
        labels = ids.clone()
        labels[0, 3] = labels[1, 8] = labels[1, 9] = -100  # ignored targets
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        ref = {"input_ids": ids, "labels": labels, "logits": out.logits.detach().contiguous(),
               "loss": out.loss.detach().reshape(1)}
        for n, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and p.grad.abs().max() > 0, n
                ref[n.replace(".default", "") + ".grad"] = p.grad.contiguous()
        save_file(ref, d / "ref.safetensors")
        wrapped = [n[len("base_model.model."):] for n, m in model.named_modules()
                   if isinstance(m, peft.tuners.lora.LoraLayer)]
        (d / "ref.json").write_text(json.dumps({
            "generator": "tools/gen_qlora_fixtures.py",
            "base": f"tests/fixtures/nf4/{arch}/f32",
            "versions": {"peft": peft.__version__, "transformers": transformers.__version__,
                         "bitsandbytes": bitsandbytes.__version__, "torch": torch.__version__.split("+")[0]},
            "quantization_config": qcfg,
            "sha256": hashes,
            "print_trainable_parameters": printed.getvalue().strip(),
            "wrapped": wrapped,
            "named_modules": [[n, type(m).__name__] for n, m in model.named_modules() if ".0." in n],
        }, indent=1) + "\n")
        print(arch, out.loss.item(), printed.getvalue().strip(), len(hashes), "hashed 4-bit tensors")


if __name__ == "__main__":
    main()
