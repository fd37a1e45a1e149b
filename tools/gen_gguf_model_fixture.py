#!/usr/bin/env python3
"""A tiny llama-family GGUF and what transformers computes from it: the fixture of
tests/test_gguf_convert.cpp (galvani's GGUF -> Hugging Face converter, io/gguf_convert.hpp).

    ../refenv/bin/python tools/gen_gguf_model_fixture.py   # (re)write tests/fixtures/gguf_model/

Needs numpy, torch, transformers, tokenizers and gguf (the reference virtualenv). Seeded and
deterministic; about 150 KB in all.

How the GGUF is made, as llama.cpp's convert_hf_to_gguf.py would make it:
  * a byte-level BPE tokenizer is trained with `tokenizers` on a few sentences of Frankenstein
    (317 tokens: the 256 byte symbols, 57 merges, three special tokens <|endoftext|>,
    <|im_start|>, <|im_end|> and one plain added token <think>), with SmolLM2's pre-tokenizer
    (Digits(individual) then ByteLevel) -- llama.cpp's "smollm";
  * a random LlamaForCausalLM (2 layers, hidden 64, 4 query / 2 key-value heads, SwiGLU 128,
    rope_theta 100000, untied lm_head) is written with gguf-py's GGUFWriter: llama.cpp's tensor
    names, the Q/K rows permuted per head as LlamaModel.permute does, linear weights in Q4_1,
    token embedding and output in Q8_0, norms in F32, and the tokenizer as tokenizer.ggml.*
    metadata (tokens, token types, merges, special ids, pre "smollm", chat template);
  * tied.gguf is a second model (1 layer, tie_word_embeddings, no output.weight, linears in
    Q5_1, the embedding in Q4_0, norms in F16) with the same tokenizer.

The expected logits come from reading each written GGUF back with gguf.GGUFReader +
gguf.quants.dequantize, undoing the permutation in numpy, loading those weights into the
transformers model and running it, so they are what the reference makes of the file on disk.
The expected token ids come from the trained Hugging Face tokenizer itself (and from the same
tokenizer with the plain GPT-2 ByteLevel pre-tokenizer, for tokenizer.ggml.pre "gpt2").

bad/ holds GGUFs with one defect each (metadata only, or a couple of tensors), for the errors.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import gguf
from gguf import GGMLQuantizationType as Q
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf_model")

TRAIN_TEXT = [
    "It was on a dreary night of November that I beheld the accomplishment of my toils.",
    "With an anxiety that almost amounted to agony, I collected the instruments of life around me,",
    "that I might infuse a spark of being into the lifeless thing that lay at my feet.",
    "It was already one in the morning; the rain pattered dismally against the panes,",
    "and my candle was nearly burnt out, when, by the glimmer of the half-extinguished light,",
    "I saw the dull yellow eye of the creature open; it breathed hard, and a convulsive motion agitated its limbs.",
    "I'm afraid I've created a monster. We'll see; you'd think they're 1818 and 2024 years apart.",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
                 " + '<|im_end|>' + '\n'}}{% endfor %}")

SAMPLES = [
    "It was on a dreary night of November that I beheld the accomplishment of my toils.",
    "I'm afraid I've created a ",
    "In 1818, 42 copies; 3.14159 and 1,000,000!",
    "  two  spaces\tand a tab\nand lines\n\n",
    "Caf\u00e9 na\u00efve \u00fcber \u2014 \u65e5\u672c\u8a9e \U0001F600",
    "<|im_start|>user\nWho made you?<|im_end|>\n<|im_start|>assistant\n",
    "a<think>b</think> <|endoftext|>",
    "",
]


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=316, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    tok.add_tokens(["<think>"])  # a plain (non-special) added token: llama.cpp's USER_DEFINED
    return tok


def gguf_vocab(tok):
    """tokens, token types and merges as llama.cpp's convert_hf_to_gguf.py writes them."""
    tj = json.loads(tok.to_str())
    vocab = tj["model"]["vocab"]
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    assert all(t is not None for t in tokens)
    types = [gguf.TokenType.NORMAL] * n
    for a in tj["added_tokens"]:
        types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    return tokens, types, merges


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate_half rows -> ggml's adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<module...>.weight
    return f"blk.{parts[2]}.{GGUF_NAMES['.'.join(parts[3:-1])]}.{parts[-1]}"


def add_llama_metadata(w, cfg, tokens=None, types=None, merges=None, drop=()):
    def kv(key, fn, *a):
        if key not in drop:
            fn(*a)
    kv("general.name", w.add_name, "galvani tiny llama")
    kv("llama.block_count", w.add_block_count, cfg.num_hidden_layers)
    kv("llama.context_length", w.add_context_length, cfg.max_position_embeddings)
    kv("llama.embedding_length", w.add_embedding_length, cfg.hidden_size)
    kv("llama.feed_forward_length", w.add_feed_forward_length, cfg.intermediate_size)
    kv("llama.attention.head_count", w.add_head_count, cfg.num_attention_heads)
    kv("llama.attention.head_count_kv", w.add_head_count_kv, cfg.num_key_value_heads)
    kv("llama.rope.freq_base", w.add_rope_freq_base, cfg.rope_parameters["rope_theta"]
       if getattr(cfg, "rope_parameters", None) else cfg.rope_theta)
    kv("llama.attention.layer_norm_rms_epsilon", w.add_layer_norm_rms_eps, cfg.rms_norm_eps)
    kv("llama.rope.dimension_count", w.add_rope_dimension_count, cfg.hidden_size // cfg.num_attention_heads)
    kv("llama.vocab_size", w.add_vocab_size, cfg.vocab_size)
    if tokens is not None:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("smollm")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_pad_token_id(2)
        w.add_add_bos_token(False)
        w.add_chat_template(CHAT_TEMPLATE)


def write_model(path, model, cfg, tokens, types, merges, qtypes):
    """qtypes: {"linear": Q, "embed": Q, "output": Q}. Returns the tensor types written."""
    w = gguf.GGUFWriter(path, "llama")
    add_llama_metadata(w, cfg, tokens, types, merges)
    written = {}
    for hf, t in model.state_dict().items():
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        a = t.detach().float().numpy().copy()
        if hf.endswith("q_proj.weight"):
            a = permute(a, cfg.num_attention_heads)
        elif hf.endswith("k_proj.weight"):
            a = permute(a, cfg.num_key_value_heads)
        if a.ndim == 1:
            qt = qtypes.get("norm", Q.F32)
        elif hf == "model.embed_tokens.weight":
            qt = qtypes["embed"]
        elif hf == "lm_head.weight":
            qt = qtypes["output"]
        else:
            qt = qtypes["linear"]
        name = gguf_name(hf)
        if qt == Q.F32:
            w.add_tensor(name, a.astype(np.float32))
        elif qt == Q.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(a, qt), raw_dtype=qt)
        written[name] = qt.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def read_back(path, model, cfg):
    """Loads what gguf-py reads from `path` (dequantized, un-permuted) into `model`."""
    r = gguf.GGUFReader(path)
    by_name = {t.name: t for t in r.tensors}
    sd = {}
    for hf, t in model.state_dict().items():
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        rt = by_name[gguf_name(hf)]
        a = np.asarray(gguf.quants.dequantize(rt.data, rt.tensor_type), dtype=np.float32).reshape(t.shape)
        if hf.endswith("q_proj.weight"):
            a = unpermute(a, cfg.num_attention_heads)
        elif hf.endswith("k_proj.weight"):
            a = unpermute(a, cfg.num_key_value_heads)
        sd[hf] = torch.from_numpy(np.ascontiguousarray(a))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    if cfg.tie_word_embeddings:
        model.tie_weights()


def make_model(seed, vocab, layers, tied):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=tied,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2)
    if getattr(cfg, "rope_parameters", None) is not None:
        cfg.rope_parameters["rope_theta"] = 100000.0
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger than the 0.02 init, so the logits differ visibly per token
        for n, p in model.named_parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.2)
            else:
                p.uniform_(0.5, 1.5)
    return model, cfg


def logits_for(model, ids_list):
    out = []
    with torch.no_grad():
        for ids in ids_list:
            out.append(model(torch.tensor([ids])).logits[0].float().numpy())
    return out


def write_bad(cfg, tokens, types, merges):
    bad = os.path.join(OUT, "bad")
    os.makedirs(bad)
    meta = dict(tokens=tokens, types=types, merges=merges)

    # an architecture the converter does not handle
    w = gguf.GGUFWriter(os.path.join(bad, "arch_falcon.gguf"), "falcon")
    w.add_block_count(1)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

    # a required key missing
    w = gguf.GGUFWriter(os.path.join(bad, "no_feed_forward_length.gguf"), "llama")
    add_llama_metadata(w, cfg, **meta, drop=("llama.feed_forward_length",))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

    rng = np.random.default_rng(3)
    C, H = cfg.hidden_size, cfg.num_attention_heads

    def with_tensors(name, tensors, **kw):
        w = gguf.GGUFWriter(os.path.join(bad, name), "llama")
        add_llama_metadata(w, cfg, **meta, **kw)
        for n, a in tensors:
            w.add_tensor(n, a.astype(np.float32))
        w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

    # blk.0.attn_q.weight with 32 rows where the config implies 64
    with_tensors("wrong_shape.gguf", [("blk.0.attn_q.weight", rng.standard_normal((32, C)))])
    # a tensor name the llama layout has no place for
    with_tensors("unknown_tensor.gguf", [("blk.0.attn_qkv.weight", rng.standard_normal((2, 32)))])
    # a layer index past llama.block_count
    with_tensors("layer_out_of_range.gguf", [("blk.7.attn_norm.weight", rng.standard_normal((C,)))])
    # a valid header whose tensors stop short: the first missing one is named
    with_tensors("missing_tensors.gguf", [("output_norm.weight", rng.standard_normal((C,)))])
    # a tokenizer type the converter does not rebuild
    w = gguf.GGUFWriter(os.path.join(bad, "tokenizer_bert.gguf"), "llama")
    add_llama_metadata(w, cfg)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    # a pre-tokenizer it does not know
    w = gguf.GGUFWriter(os.path.join(bad, "pre_qwen2.gguf"), "llama")
    add_llama_metadata(w, cfg)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    # rope scaling, which the converter refuses rather than drops
    w = gguf.GGUFWriter(os.path.join(bad, "rope_scaling.gguf"), "llama")
    add_llama_metadata(w, cfg, **meta)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(2.0)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    tok = train_tokenizer()
    tokens, types, merges = gguf_vocab(tok)
    vocab = len(tokens)

    # token ids: the trained tokenizer ("smollm") and the plain GPT-2 ByteLevel one ("gpt2")
    ids_smollm = [tok.encode(s).ids for s in SAMPLES]
    plain = Tokenizer.from_str(tok.to_str())
    plain.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    ids_gpt2 = [plain.encode(s).ids for s in SAMPLES]
    for s, ids in zip(SAMPLES, ids_smollm):
        assert tok.decode(ids, skip_special_tokens=False) == s, (s, tok.decode(ids))

    expected = {"samples": SAMPLES, "ids_smollm": ids_smollm, "ids_gpt2": ids_gpt2, "models": {}}
    prompts = [ids_smollm[1], ids_smollm[6]]
    logits_blob = []
    offset = 0
    for fname, seed, layers, tied, qtypes in [
        ("tiny_llama.gguf", 1, 2, False, {"linear": Q.Q4_1, "embed": Q.Q8_0, "output": Q.Q8_0}),
        ("tied.gguf", 2, 1, True, {"linear": Q.Q5_1, "embed": Q.Q4_0, "output": None, "norm": Q.F16}),
    ]:
        model, cfg = make_model(seed, vocab, layers, tied)
        path = os.path.join(OUT, fname)
        written = write_model(path, model, cfg, tokens, types, merges, qtypes)
        read_back(path, model, cfg)
        lg = logits_for(model, prompts)
        entry = {"config": {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                            "intermediate_size": cfg.intermediate_size,
                            "num_hidden_layers": cfg.num_hidden_layers,
                            "num_attention_heads": cfg.num_attention_heads,
                            "num_key_value_heads": cfg.num_key_value_heads,
                            "max_position_embeddings": cfg.max_position_embeddings,
                            "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": 100000.0,
                            "tie_word_embeddings": tied},
                 "tensor_types": written, "prompts": [], "n_tensors_hf": len(written)}
        for ids, l in zip(prompts, lg):
            entry["prompts"].append({"ids": ids, "logits_at": offset, "shape": list(l.shape),
                                     "max_abs": float(np.abs(l).max())})
            logits_blob.append(l.astype("<f4").ravel())
            offset += l.size
        expected["models"][fname] = entry
        if fname == "tiny_llama.gguf":
            write_bad(cfg, tokens, types, merges)

    np.concatenate(logits_blob).tofile(os.path.join(OUT, "expected_logits.f32"))
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"wrote {OUT}: {total / 1024:.0f} KB")


if __name__ == "__main__":
    sys.exit(main())
