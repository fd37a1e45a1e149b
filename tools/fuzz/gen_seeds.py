#!/usr/bin/env python3
"""Write the committed seed corpora of the libFuzzer targets: tools/fuzz/corpus/<target>/.

  ../refenv/bin/python tools/fuzz/gen_seeds.py        (needs `tokenizers` and `safetensors`)

Seeds are small valid files of each format (the fuzzers mutate from them): copies of the
test fixtures, the shared data's configs, tokenizers trained here with the `tokenizers`
package in three forms (byte-level, Metaspace with byte fallback, split digits + NFC; the
differential corpus, which run_fuzz.sh adds as seeds, has every other component),
bitsandbytes quant-state JSON as transformers writes it, and encode/decode inputs. The
safetensors and GGUF corpora are older and written by hand; this script leaves them alone.
"""
import json
import os
import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
DATA = Path(os.environ.get("GALVANI_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "tools" / "fuzz" / "corpus"


def target(name):
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def copy(dst_dir, src, name=None):
    shutil.copyfile(src, dst_dir / (name or src.name))


def index_seeds():
    d = target("fuzz_safetensors_index")
    copy(d, FIX / "mistral" / "model.safetensors.index.json", "mistral_index.json")
    copy(d, FIX / "json_whole" / "model.safetensors.index.json", "json_whole_index.json")
    for bad in sorted((FIX / "checkpoints" / "malformed").glob("*/model.safetensors.index.json")):
        copy(d, bad, bad.parent.name + ".json")


def config_seeds():
    d = target("fuzz_model_configs")
    for src, name in [(FIX / "llama" / "config.json", "llama_config.json"),
                      (FIX / "mistral" / "config.json", "mistral_config.json"),
                      (FIX / "checkpoints" / "gpt2_tiny" / "config.json", "gpt2_config.json"),
                      (FIX / "nf4" / "mistral" / "bnb4" / "config.json", "bnb4_config.json"),
                      (DATA / "tokenizers" / "gpt2" / "config-distilgpt2.json", "distilgpt2_config.json"),
                      (DATA / "tokenizers" / "mistral" / "config.json", "mistral7b_config.json"),
                      (FIX / "mistral" / "generation_config.json", "generation_config.json"),
                      (DATA / "tokenizers" / "gpt2" / "generation_config.json", "gpt2_generation_config.json"),
                      (DATA / "tokenizers" / "mistral" / "tokenizer_config.json", "mistral_tokenizer_config.json"),
                      (DATA / "tokenizers" / "mistral" / "special_tokens_map.json", "special_tokens_map.json"),
                      (FIX / "json_whole" / "tokenizer_config.json", "tokenizer_config.json")]:
        copy(d, src, name)


def adapter_seeds():
    d = target("fuzz_adapter_config")
    for sub in ["gpt2", "mistral", "qlora_gpt2", "qlora_mistral"]:
        copy(d, FIX / "lora" / sub / "adapter" / "adapter_config.json", sub + ".json")
    base = json.loads((FIX / "lora" / "mistral" / "adapter" / "adapter_config.json").read_text())
    for name, tm in [("regex", r".*\.(q|v)_proj"), ("all_linear", "all-linear")]:
        (d / (name + ".json")).write_text(json.dumps(dict(base, target_modules=tm), indent=2))


def quant_state_seeds():
    # json.dumps(QuantState.as_dict(packed=True)) without the tensors, as bitsandbytes packs it.
    d = target("fuzz_quant_state")
    states = {
        "nf4_nested": {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [48, 64],
                       "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0316},
        "nf4_plain": {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [32000, 4096]},
        "fp4_f16": {"quant_type": "fp4", "blocksize": 4096, "dtype": "float16", "shape": [7]},
    }
    for name, s in states.items():
        (d / (name + ".json")).write_text(json.dumps(s))


def tokenizer_seeds():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    d = target("fuzz_tokenizer_json")
    copy(d, FIX / "json_whole" / "tokenizer.json", "json_whole.json")
    copy(d, FIX / "cli" / "letters_tokenizer.json", "letters.json")
    text = (DATA / "frankenstein" / "pg84.txt").read_text(encoding="utf-8")[20000:60000].splitlines()
    forms = {
        "byte_level": dict(pre=pre_tokenizers.ByteLevel(add_prefix_space=False), dec=decoders.ByteLevel(),
                           post=processors.ByteLevel(trim_offsets=True), byte_fallback=False),
        "metaspace": dict(pre=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first"),
                          dec=decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                                 decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
                          post=processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)]),
                          byte_fallback=True),
        "split_digits_nfc": dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(r"\d", "isolated"),
                                                              pre_tokenizers.ByteLevel(add_prefix_space=True)]),
                                 norm=normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()]),
                                 dec=decoders.ByteLevel(), post=None, byte_fallback=False),
    }
    for name, f in forms.items():
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=f["byte_fallback"], fuse_unk=f["byte_fallback"]))
        if f.get("norm"):
            tok.normalizer = f["norm"]
        tok.pre_tokenizer = f["pre"]
        tok.decoder = f["dec"]
        alphabet = pre_tokenizers.ByteLevel.alphabet() if name != "metaspace" else []
        trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=alphabet,
                                      show_progress=False)
        tok.train_from_iterator(text, trainer)
        if f["post"] is not None:
            tok.post_processor = f["post"]
        (d / (name + ".json")).write_text(tok.to_str(pretty=False))


def encode_seeds():
    # First byte: bit 0 the tokenizer (0 GPT-2, 1 Mistral), bit 1 decode, bit 2 special tokens.
    d = target("fuzz_tokenizer_encode")
    texts = {"novel": "I'm afraid I've created a monster.\n\nYou will rejoice to hear that no disaster",
             "unicode": "naïve café — 漢字 🙂\t\r\n  spaces   ",
             "special": "<|endoftext|><s>[INST] hi [/INST]</s>"}
    for name, t in texts.items():
        for flags in (0, 1, 4, 5):
            (d / f"{name}_{flags}").write_bytes(bytes([flags]) + t.encode("utf-8"))
    ids = struct.pack("<8i", 40, 1101, 50256, 1, 2, 28705, -1, 70000)
    for flags in (2, 3, 6, 7):
        (d / f"ids_{flags}").write_bytes(bytes([flags]) + ids)


def csv_seeds():
    d = target("fuzz_csv")
    for src in sorted((FIX / "data").glob("*.csv")) + sorted((FIX / "cli").glob("*.csv")):
        copy(d, src, src.parent.name + "_" + src.name)
    text = (DATA / "frankenstein" / "pg84.txt").read_text(encoding="utf-8")[30000:33000]
    rows = [text[i:i + 300] for i in range(0, len(text), 300)]
    body = "text\n" + "".join('"' + r.replace('"', '""') + '"\n' for r in rows)
    (d / "chunks.csv").write_text(body, encoding="utf-8")
    (d / "crlf_bom.csv").write_bytes(b"\xef\xbb\xbfid,text,score\r\n1,\"a, b\",0.5\r\n2,,NA\r\n3,\"x\"\"y\",1e3\r\n")


if __name__ == "__main__":
    if not DATA.is_dir():
        sys.exit(f"gen_seeds.py: no shared data folder at {DATA} (set GALVANI_DATA)")
    index_seeds()
    config_seeds()
    adapter_seeds()
    quant_state_seeds()
    tokenizer_seeds()
    encode_seeds()
    csv_seeds()
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {len(list(p.iterdir()))} seeds")
