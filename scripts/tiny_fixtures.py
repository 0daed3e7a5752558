#!/usr/bin/env python3
"""Tiny random-weight models of every supported architecture, and llama.cpp's numbers on them.

No real Qwen3 or GPT-2 file can be fetched on these machines, so parity with llama.cpp is shown
on small models written here with llama.cpp's own `gguf` package, one per architecture (llama,
qwen2, qwen3, gemma3, gpt2), each shaped like its real family:
  - the vocabulary is the real one of a catalog model of the same tokenizer family, cut to its
    first tokens (byte-level BPE: the merges among the kept tokens; SentencePiece: the kept
    pieces and every character they use), with the family's special tokens and chat template;
  - tensor names, metadata keys and quantization types as llama.cpp's converter writes them
    (fused QKV and biases for GPT-2, per-head Q/K norms for Qwen3 and Gemma 3, K-quants where
    a row is long enough);
  - random weights from a seeded generator, so a rerun writes the same bytes.
Then llama-cpp-python runs each one exactly as scripts/llama_fixtures.py runs the real models,
and tests/fixtures/tiny/<arch>.json is written with the model's sha256. The models themselves
(tests/fixtures/tiny/<arch>.gguf, 140-410 KB each) are not committed: the test command writes
them again with `--models-only`, which needs only gguf-py and numpy (pinned, in a small venv
outside the clone), and checks each against its fixture's sha256. The writer is seeded and
numpy's RandomState stream is frozen, so the bytes are the same on every machine.
tests/tiny_parity.rs and tests/e2e/archs.test.mjs use them.

Usage: scripts/tiny_fixtures.py [NAME ...]      models and llama.cpp fixtures (the llama venv;
                                                NAMEs: only those, e.g. gemma3-pattern)
       scripts/tiny_fixtures.py --models-only   just the models, checked against the fixtures
Both need assets/models/ fetched (the vocabularies come from the catalog models).
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_fixtures as lf  # noqa: E402

ROOT = lf.ROOT
# The writer's own environment for --models-only: the versions the fixtures were made with.
WRITER_VENV = os.path.join(os.path.expanduser("~"), ".cache", "tinylab", "gguf-venv")
WRITER_PACKAGES = [lf.GGUF, "numpy==2.4.6"]
OUT = os.path.join(ROOT, "tests", "fixtures", "tiny")
MODELS = os.path.join(ROOT, "assets", "models")

# Tokens kept from the source vocabulary: enough merges that words tokenize like the real
# model's, few enough that the embedding table stays small.
BPE_KEEP = 1000
SPM_KEEP = 1000

# Shaped like Qwen3's own template (system turn, reverse scan for the last user query with a
# namespace, reasoning split out of assistant turns, `enable_thinking`), written for these
# fixtures so the engine's template support is tested on the features Qwen3 files use.
QWEN3_STYLE_TEMPLATE = """{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(searching=true, last_query=messages|length - 1) %}
{%- for m in messages[::-1] %}
    {%- if ns.searching and m.role == 'user' and not m.content.startswith('<tool_response>') %}
        {%- set ns.searching = false %}
        {%- set ns.last_query = (messages|length - 1) - loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- for m in messages %}
    {%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}
    {%- elif m.role == 'assistant' %}
        {%- set content = m.content %}
        {%- if '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query %}
            {{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + content.strip() + '<|im_end|>\\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\\n' + content.strip() + '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

# arch -> (source vocabulary in the catalog, tokenizer.ggml.pre, chat template source)
FAMILIES = {
    "llama": ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm", "source"),
    "qwen2": ("qwen2.5-coder-0.5b-instruct.gguf", "qwen2", "source"),
    "qwen3": ("qwen2.5-coder-0.5b-instruct.gguf", "qwen2", "qwen3"),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", "default", None),
    # GPT-2's own vocabulary is byte-level BPE like SmolLM2's; the split is GPT-2's regex.
    "gpt2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "gpt-2", None),
}

# Files of an architecture written differently from its family's usual shape, each checked
# against llama.cpp like the five above: name -> (architecture, what differs). Hidden in the
# usual files, these are what llama.cpp reads from the metadata and a file may set otherwise.
VARIANTS = {
    # Gemma 3 with every third layer global (a number), the local layers' own RoPE base and
    # a final logit softcap.
    "gemma3-pattern": ("gemma3", {"window": 4, "pattern": 3, "swa_base": 50000.0,
                                  "softcap": 4.0}),
    # A pattern as llama.cpp's list of booleans, layer by layer (the last layers past it are
    # global).
    "gemma3-list": ("gemma3", {"window": 4, "pattern": [True, False, True, True]}),
    # No window: no layer slides, and every layer rotates at `rope.freq_base`.
    "gemma3-global": ("gemma3", {"window": None}),
    # Qwen2 without its q/k/v biases, which llama.cpp reads only where they are.
    "qwen2-nobias": ("qwen2", {"no_bias": True}),
    # No special token ids: llama.cpp's defaults (SentencePiece BOS 1 and EOS 2; byte-level
    # BPE 11 for both, which in this vocabulary is ",").
    "gemma3-noids": ("gemma3", {"no_ids": True}),
    "llama-noids": ("llama", {"no_ids": True}),
    # End-of-turn, end-of-message and fill-in-the-middle pad ids named by the file (three
    # plain tokens here), which llama.cpp ends a generation on; a named pad id replaces the
    # one found by its text.
    "qwen2-endids": ("qwen2", {"end_ids": {"tokenizer.ggml.eot_token_id": 13,
                                           "tokenizer.ggml.eom_token_id": 11,
                                           "tokenizer.ggml.fim_pad_token_id": 30}}),
    # Linear RoPE scaling (positions divided by 4), which llama.cpp applies.
    "llama-linear": ("llama", {"rope_linear": 4.0}),
    # A fused q/k/v matrix with separate biases, which llama.cpp adds to it.
    "qwen2-fused": ("qwen2", {"fused_qkv": True}),
    # Head counts and feed-forward width as lists with one value per layer.
    "qwen3-arrays": ("qwen3", {"per_layer": True}),
    # Every text closed with EOS (`add_eos_token`), as llama.cpp adds it with BOS: the
    # prompt, the scored text and the rendered chat all end with it.
    "gemma3-addeos": ("gemma3", {"add_eos": True}),
    # The same, with a few normal tokens typed unused, undefined, unknown and out of range,
    # which llama.cpp writes as nothing (and reads an unknown one's text as that token where
    # it reads special tokens).
    "qwen2-addeos": ("qwen2", {"add_eos": True, "retype": [5, 0, 2, 9]}),
    # llama.cpp's IQ4_NL (4-bit indices into a non-uniform table, a scale per 32), every
    # matrix and the tied embedding table.
    "llama-iq4nl": ("llama", {"spec": {"embd": "IQ4_NL", "q": "IQ4_NL", "k": "IQ4_NL",
                                       "v": "IQ4_NL", "o": "IQ4_NL", "gate": "IQ4_NL",
                                       "up": "IQ4_NL", "down": "IQ4_NL"}}),
    # IQ4_XS (the same table, 6-bit factors under a scale per 256) mixed with IQ4_NL as
    # llama.cpp's IQ4_XS files mix them; rows of 256.
    "llama-iq4xs": ("llama", {"spec": {"d": 256, "head_dim": 64, "ff": 256,
                                       "embd": "IQ4_NL", "q": "IQ4_XS", "k": "IQ4_NL",
                                       "v": "IQ4_NL", "o": "IQ4_XS", "gate": "IQ4_XS",
                                       "up": "IQ4_NL", "down": "IQ4_XS"}}),
    # Llama 3's per-frequency RoPE factors (`rope_freqs.weight`, one per pair of a head's
    # dimensions), which llama.cpp divides the frequencies by: here from 0.5 (twice as fast)
    # to 8, so that every position of the test texts turns otherwise than plain RoPE.
    "llama-freqs": ("llama", {"rope_freqs": True}),
    # YaRN at a factor of 1 (Qwen3's files may name YaRN so): llama.cpp's `rope_yarn` then
    # turns every angle as plain RoPE does.
    "qwen3-yarn1": ("qwen3", {"rope_yarn": 1.0}),
}
# Every model written, in seed order: the five families' first, so their bytes never change.
NAMES = list(FAMILIES) + list(VARIANTS)

TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_USER, TYPE_UNUSED, TYPE_BYTE = 1, 2, 3, 4, 5, 6


def read_vocab(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    f = r.fields

    def arr(key, conv):
        x = f.get(key)
        return None if x is None else [conv(x.parts[i]) for i in x.data]

    def scalar(key):
        x = f.get(key)
        return None if x is None else x.parts[x.data[0]].tolist()[0]

    return {
        "model": bytes(f["tokenizer.ggml.model"].parts[-1]).decode(),
        "tokens": arr("tokenizer.ggml.tokens", lambda p: bytes(p).decode()),
        "types": arr("tokenizer.ggml.token_type", lambda p: int(p[0])),
        "scores": arr("tokenizer.ggml.scores", lambda p: float(p[0])),
        "merges": arr("tokenizer.ggml.merges", lambda p: bytes(p).decode()),
        "bos": scalar("tokenizer.ggml.bos_token_id"),
        "eos": scalar("tokenizer.ggml.eos_token_id"),
        "unk": scalar("tokenizer.ggml.unknown_token_id"),
        "pad": scalar("tokenizer.ggml.padding_token_id"),
        "add_bos": scalar("tokenizer.ggml.add_bos_token"),
        "add_space_prefix": scalar("tokenizer.ggml.add_space_prefix"),
        "template": (bytes(f["tokenizer.chat_template"].parts[-1]).decode()
                     if "tokenizer.chat_template" in f else None),
    }


def cut_vocab(v):
    """The source vocabulary cut to its first tokens, renumbered in the original order."""
    tokens, types = v["tokens"], v["types"]
    n = len(tokens)
    specials = {i for i in range(n) if types[i] in (TYPE_CONTROL, TYPE_USER, TYPE_UNKNOWN)}
    named = {v[k] for k in ("bos", "eos", "unk", "pad") if v[k] is not None}
    if v["model"] == "gpt2":
        normal = [i for i in range(n) if types[i] == TYPE_NORMAL][:BPE_KEEP]
        keep = set(normal) | specials | named
    else:
        # Gemma's control tokens run to thousands of `<unusedN>`: keep the named ones and those
        # a chat needs; keep every byte token, the first pieces, and every character they use
        # (a real SentencePiece vocabulary has each character it can produce).
        wanted = {"<start_of_turn>", "<end_of_turn>", "<mask>"}
        ctrl = {i for i in specials if types[i] != TYPE_CONTROL or tokens[i] in wanted}
        normal = [i for i in range(n) if types[i] == TYPE_NORMAL][:SPM_KEEP]
        chars = {c for i in normal for c in tokens[i]}
        singles = [i for i in range(n) if types[i] == TYPE_NORMAL and len(tokens[i]) == 1
                   and tokens[i] in chars]
        keep = set(normal) | set(singles) | ctrl | named | {
            i for i in range(n) if types[i] == TYPE_BYTE}
    order = sorted(keep)
    new_id = {old: new for new, old in enumerate(order)}
    out = {
        "tokens": [tokens[i] for i in order],
        "types": [types[i] for i in order],
        "scores": [v["scores"][i] for i in order] if v["scores"] else None,
        "merges": None,
    }
    if v["merges"]:
        kept = set(out["tokens"])
        out["merges"] = [m for m in v["merges"]
                         if all(p in kept for p in m.split(" ", 1)) and m.replace(" ", "") in kept]
    for k in ("bos", "eos", "unk", "pad"):
        out[k] = new_id.get(v[k]) if v[k] is not None else None
    return out


class Weights:
    """Seeded random tensors in the types llama.cpp's converter and quantizer write."""

    def __init__(self, seed):
        import numpy as np

        self.np = np
        self.rng = np.random.RandomState(seed)

    def normal(self, rows, cols, gain=1.0):
        return (self.rng.standard_normal((rows, cols)) * gain / self.np.sqrt(cols)).astype(
            self.np.float32)

    def vector(self, n, around=0.0, spread=0.1):
        return (around + spread * self.rng.standard_normal(n)).astype(self.np.float32)

    def matrix(self, rows, cols, qtype, gain=1.0):
        """(array, raw_dtype) for GGUFWriter.add_tensor."""
        import gguf

        np = self.np
        Q = gguf.GGMLQuantizationType
        if qtype == Q.F32:
            return self.normal(rows, cols, gain), None
        if qtype == Q.F16:
            return self.normal(rows, cols, gain).astype(np.float16), None
        if qtype in (Q.Q4_K, Q.Q6_K):
            return self.k_quant(rows, cols, qtype, gain), qtype
        if qtype in (Q.IQ4_NL, Q.IQ4_XS):
            return self.iq4(rows, cols, qtype, gain), qtype
        return gguf.quants.quantize(self.normal(rows, cols, gain), qtype), qtype

    def k_quant(self, rows, cols, qtype, gain):
        """Random K-quant blocks (gguf-py cannot quantize to them), zero-mean with the spread
        of `normal`: Q6_K's 6-bit values and int8 scales are symmetric as they come; Q4_K gets
        one scale and min per sub-block chosen so that d·sc·q − dmin·m centres on 0."""
        import gguf

        np = self.np
        assert cols % 256 == 0, "K-quants need rows of 256"
        blocks = rows * cols // 256
        target = gain / np.sqrt(cols)
        if qtype == gguf.GGMLQuantizationType.Q6_K:
            ql = self.rng.randint(0, 256, (blocks, 128), dtype=np.uint8)
            qh = self.rng.randint(0, 256, (blocks, 64), dtype=np.uint8)
            scales = self.rng.randint(-128, 128, (blocks, 16)).astype(np.int8).view(np.uint8)
            # (q − 32) has a spread of 18.5, a uniform int8 scale one of 74.
            d = (target / (18.5 * 74) * self.rng.uniform(0.5, 1.5, blocks)).astype(np.float16)
            raw = np.concatenate([ql, qh, scales, d.reshape(-1, 1).view(np.uint8)], axis=1)
            return raw.reshape(rows, -1)
        # Q4_K: every sub-block sc = 16, m = 60 (packed as below), dmin = 2d, so the mean of
        # d·16·q (q uniform 0..15) equals dmin·60.
        scales = np.array([80] * 4 + [252] * 4 + [192] * 4, dtype=np.uint8)
        sign = self.rng.choice([-1.0, 1.0], blocks)
        d = (sign * target / (16 * 4.6) * self.rng.uniform(0.5, 1.5, blocks)).astype(np.float16)
        dmin = (d.astype(np.float32) * 2).astype(np.float16)
        qs = self.rng.randint(0, 256, (blocks, 128), dtype=np.uint8)
        raw = np.concatenate([d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8),
                              np.tile(scales, (blocks, 1)), qs], axis=1)
        return raw.reshape(rows, -1)


    def iq4(self, rows, cols, qtype, gain):
        """Random IQ4_NL or IQ4_XS blocks (gguf-py cannot quantize to them) with the spread of
        `normal`: uniform indices into llama.cpp's table (spread 70), IQ4_XS with uniform 6-bit
        block factors (f − 32: spread 18.5) under a super-block scale."""
        import gguf

        np = self.np
        target = gain / np.sqrt(cols)
        sign = lambda n: self.rng.choice([-1.0, 1.0], n)  # noqa: E731
        if qtype == gguf.GGMLQuantizationType.IQ4_NL:
            blocks = rows * cols // 32
            d = (sign(blocks) * target / 70 * self.rng.uniform(0.5, 1.5, blocks)).astype(
                np.float16)
            qs = self.rng.randint(0, 256, (blocks, 16), dtype=np.uint8)
            raw = np.concatenate([d.reshape(-1, 1).view(np.uint8), qs], axis=1)
            return raw.reshape(rows, -1)
        assert cols % 256 == 0, "IQ4_XS needs rows of 256"
        blocks = rows * cols // 256
        d = (sign(blocks) * target / (70 * 18.5) * self.rng.uniform(0.5, 1.5, blocks)).astype(
            np.float16)
        scales_h = self.rng.randint(0, 1 << 16, (blocks, 1), dtype=np.uint16)
        scales_l = self.rng.randint(0, 256, (blocks, 4), dtype=np.uint8)
        qs = self.rng.randint(0, 256, (blocks, 128), dtype=np.uint8)
        raw = np.concatenate([d.reshape(-1, 1).view(np.uint8), scales_h.view(np.uint8),
                              scales_l, qs], axis=1)
        return raw.reshape(rows, -1)


# Per architecture: shape and the quantization of each matrix, after its real family.
def spec(arch):
    import gguf

    Q = gguf.GGMLQuantizationType
    base = dict(d=64, layers=2, heads=4, kv=2, head_dim=16, ff=128, ctx=512, embd=Q.Q8_0,
                output=None, q=Q.Q8_0, k=Q.Q8_0, v=Q.Q8_0, o=Q.Q8_0, gate=Q.Q8_0, up=Q.Q8_0,
                down=Q.Q8_0)
    if arch == "llama":  # SmolLM2 Q4_1: tied embeddings, GQA, Q4_1 nearly everywhere
        base.update(q=Q.Q4_1, k=Q.Q4_1, v=Q.Q4_1, o=Q.Q4_1, gate=Q.Q4_1, up=Q.Q4_1, down=Q.Q4_1)
    elif arch == "qwen2":  # Qwen2.5: QKV biases, own output matrix, Q5_0 and Q6_K
        base.update(ff=256, output=Q.Q4_0, q=Q.Q5_0, k=Q.Q5_0, v=Q.Q8_0, gate=Q.Q5_0,
                    up=Q.Q5_0, down=Q.Q6_K)
    elif arch == "qwen3":  # Qwen3: head size 32 with 4 heads on width 256 (queries 128 wide),
        # and its tied embedding table in Q6_K, as llama.cpp's Q4_K_M stores a tied model's
        # (Qwen3 0.6B, Llama 3.2 1B): the output layer's product reads the table's stored blocks.
        base.update(d=256, head_dim=32, embd=Q.Q6_K, q=Q.Q8_0, k=Q.Q4_0, v=Q.F16, o=Q.Q8_0,
                    gate=Q.Q4_0, up=Q.Q4_0, down=Q.Q8_0)
    elif arch == "gemma3":  # Gemma 3: one global layer after five local ones; Q4_K, Q5_1
        base.update(layers=6, heads=4, kv=1, head_dim=32, ff=256, q=Q.Q5_1, k=Q.Q5_1,
                    v=Q.Q8_0, o=Q.Q5_1, gate=Q.Q4_0, up=Q.Q4_0, down=Q.Q4_K)
    elif arch == "gpt2":  # GPT-2: fused QKV in F16, biases, LayerNorm, learned positions
        base.update(heads=4, kv=4, head_dim=16, ff=256, ctx=384, o=Q.Q8_0, up=Q.Q8_0,
                    down=Q.Q6_K)
    return base


def write_model(name, path, seed):
    import gguf

    arch, extra = VARIANTS.get(name, (name, {}))
    src, pre, template_from = FAMILIES[arch]
    source = read_vocab(os.path.join(MODELS, src))
    voc = cut_vocab(source)
    s = spec(arch)
    Q = gguf.GGMLQuantizationType
    s.update({k: Q[v] if isinstance(v, str) else v for k, v in extra.get("spec", {}).items()})
    w = Weights(seed)
    d, hd, nh, nkv = s["d"], s["head_dim"], s["heads"], s["kv"]
    n_vocab = len(voc["tokens"])

    g = gguf.GGUFWriter(path, arch)
    g.add_name(f"tinylab tiny {name}")
    g.add_context_length(s["ctx"])
    g.add_embedding_length(d)
    g.add_block_count(s["layers"])
    per_layer = (lambda v: [v] * s["layers"]) if extra.get("per_layer") else (lambda v: v)
    g.add_feed_forward_length(per_layer(s["ff"]))
    g.add_head_count(per_layer(nh))
    g.add_head_count_kv(per_layer(nkv))
    if "rope_linear" in extra:
        g.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        g.add_rope_scaling_factor(extra["rope_linear"])
    if "rope_yarn" in extra:
        g.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        g.add_rope_scaling_factor(extra["rope_yarn"])
        g.add_rope_scaling_orig_ctx_len(64)
    if arch == "gpt2":
        g.add_layer_norm_eps(1e-5)
    else:
        g.add_layer_norm_rms_eps(1e-6)
        g.add_key_length(hd)
        g.add_value_length(hd)
        g.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    if arch == "gemma3":
        window = extra.get("window", 8)  # crossed many times by the test texts
        if window is not None:
            g.add_sliding_window(window)
        if "pattern" in extra:
            key = "gemma3.attention.sliding_window_pattern"
            if isinstance(extra["pattern"], list):
                g.add_array(key, extra["pattern"])
            else:
                g.add_uint32(key, extra["pattern"])
        if "swa_base" in extra:
            g.add_float32("gemma3.rope.freq_base_swa", extra["swa_base"])
        if "softcap" in extra:
            g.add_float32("gemma3.final_logit_softcapping", extra["softcap"])
    g.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)

    g.add_tokenizer_model("llama" if voc["scores"] and not voc["merges"] else "gpt2")
    g.add_tokenizer_pre(pre)
    g.add_token_list(voc["tokens"])
    if extra.get("retype"):
        # Whole-word tokens that no fixture text holds, so that only the lists of pieces and
        # of special texts meet them.
        texts = " ".join(lf.TOKENIZE_STRINGS + lf.GREEDY_PROMPTS + lf.CHAT_PROMPTS
                         + [lf.SCORE_TEXT, lf.FIDELITY_TEXT]).lower()
        picks = [i for i in range(len(voc["tokens"]) - 1, -1, -1)
                 if voc["types"][i] == TYPE_NORMAL and voc["tokens"][i].isalpha()
                 and voc["tokens"][i].isascii() and len(voc["tokens"][i]) >= 4
                 and voc["tokens"][i].lower() not in texts]
        for i, ty in zip(picks, extra["retype"]):
            voc["types"][i] = ty
    g.add_token_types(voc["types"])
    if voc["merges"] is not None:
        g.add_token_merges(voc["merges"])
    else:
        g.add_token_scores(voc["scores"])
    for key, add in (("bos", g.add_bos_token_id), ("eos", g.add_eos_token_id),
                     ("unk", g.add_unk_token_id), ("pad", g.add_pad_token_id)):
        if voc[key] is not None and not extra.get("no_ids"):
            add(voc[key])
    for key, value in extra.get("end_ids", {}).items():
        g.add_uint32(key, value)
    g.add_add_bos_token(bool(source["add_bos"]))
    if extra.get("add_eos"):
        g.add_add_eos_token(True)
    if source["add_space_prefix"] is not None:
        g.add_add_space_prefix(bool(source["add_space_prefix"]))
    template = {"source": source["template"], "qwen3": QWEN3_STYLE_TEMPLATE}.get(template_from)
    if template:
        g.add_chat_template(template)

    def add(name, pair):
        arr, raw = pair
        if raw is None:
            g.add_tensor(name, arr)
        else:
            g.add_tensor(name, arr, raw_dtype=raw)

    f32 = lambda v: (v, None)  # noqa: E731
    # Logits with a spread of about 2.5, as a trained small model's: entropies of a few nats,
    # so the numbers compared are in the range real text gives (no one-hot distributions).
    add("token_embd.weight", w.matrix(n_vocab, d, s["embd"], gain=2.5))
    if extra.get("rope_freqs"):
        half = hd // 2
        factors = [0.5 * 16.0 ** (i / (half - 1)) for i in range(half)]
        add("rope_freqs.weight", f32(w.np.array(factors, dtype=w.np.float32)))
    if arch == "gpt2":
        add("position_embd.weight", (w.normal(s["ctx"], d, 4.0).astype(w.np.float16), None))
        add("output_norm.bias", f32(w.vector(d)))
    add("output_norm.weight", f32(w.vector(d, 1.0)))
    if s["output"] is not None:
        add("output.weight", w.matrix(n_vocab, d, s["output"], gain=2.5))
    for i in range(s["layers"]):
        p = f"blk.{i}"
        add(f"{p}.attn_norm.weight", f32(w.vector(d, 1.0)))
        add(f"{p}.ffn_norm.weight", f32(w.vector(d, 1.0)))
        if arch == "gpt2":
            add(f"{p}.attn_norm.bias", f32(w.vector(d)))
            add(f"{p}.ffn_norm.bias", f32(w.vector(d)))
            add(f"{p}.attn_qkv.weight", w.matrix(3 * d, d, Q.F16, gain=2.0))
            add(f"{p}.attn_qkv.bias", f32(w.vector(3 * d)))
            add(f"{p}.attn_output.bias", f32(w.vector(d)))
            add(f"{p}.ffn_up.bias", f32(w.vector(s["ff"])))
            add(f"{p}.ffn_down.bias", f32(w.vector(d)))
        else:
            if extra.get("fused_qkv"):
                add(f"{p}.attn_qkv.weight", w.matrix((nh + 2 * nkv) * hd, d, Q.Q8_0, gain=2.0))
            else:
                add(f"{p}.attn_q.weight", w.matrix(nh * hd, d, s["q"], gain=2.0))
                add(f"{p}.attn_k.weight", w.matrix(nkv * hd, d, s["k"], gain=2.0))
                add(f"{p}.attn_v.weight", w.matrix(nkv * hd, d, s["v"]))
            add(f"{p}.ffn_gate.weight", w.matrix(s["ff"], d, s["gate"]))
        if arch == "qwen2" and not extra.get("no_bias"):
            add(f"{p}.attn_q.bias", f32(w.vector(nh * hd, spread=0.3)))
            add(f"{p}.attn_k.bias", f32(w.vector(nkv * hd, spread=0.3)))
            add(f"{p}.attn_v.bias", f32(w.vector(nkv * hd, spread=0.3)))
        if arch in ("qwen3", "gemma3"):
            add(f"{p}.attn_q_norm.weight", f32(w.vector(hd, 1.0, 0.2)))
            add(f"{p}.attn_k_norm.weight", f32(w.vector(hd, 1.0, 0.2)))
        if arch == "gemma3":
            add(f"{p}.post_attention_norm.weight", f32(w.vector(d, 1.0)))
            add(f"{p}.post_ffw_norm.weight", f32(w.vector(d, 1.0)))
        add(f"{p}.attn_output.weight", w.matrix(d, nh * hd, s["o"]))
        add(f"{p}.ffn_up.weight", w.matrix(s["ff"], d, s["up"]))
        add(f"{p}.ffn_down.weight", w.matrix(d, s["ff"], s["down"]))

    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()


def ensure_writer_venv():
    """A venv with just gguf-py and numpy at the fixtures' versions (idempotent), re-exec'd."""
    import subprocess

    py = os.path.join(WRITER_VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(WRITER_VENV):
        return
    # A venv whose creation failed halfway (no ensurepip) has a python but no pip: made again.
    has_pip = os.path.exists(py) and subprocess.run(
        [py, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if not has_pip:
        subprocess.run([sys.executable, "-m", "venv", "--clear", WRITER_VENV], check=True)
    pins = ", ".join(repr(p.split("==")) for p in WRITER_PACKAGES)
    check = ("from importlib.metadata import version; "
             f"assert all(version(n) == v for n, v in [{pins}])")
    probe = subprocess.run([py, "-c", check], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", *WRITER_PACKAGES], check=True)
    os.execv(py, [py] + sys.argv)


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def models_only():
    """Writes each tiny model unless it is already there, and checks it is the fixture's."""
    ensure_writer_venv()
    os.makedirs(OUT, exist_ok=True)
    for seed, arch in enumerate(NAMES, start=1):
        with open(os.path.join(OUT, f"{arch}.json")) as f:
            want = json.load(f)["sha256"]
        path = os.path.join(OUT, f"{arch}.gguf")
        if os.path.exists(path) and sha256_of(path) == want:
            continue
        src = os.path.join(MODELS, FAMILIES[VARIANTS.get(arch, (arch,))[0]][0])
        if not os.path.exists(src):
            sys.exit(f"{src} is missing: run `python3 scripts/fetch_models.py --all` first")
        write_model(arch, path, seed)
        got = sha256_of(path)
        if got != want:
            sys.exit(f"tests/fixtures/tiny/{arch}.gguf came out as {got[:16]}…, but its fixture "
                     f"is for {want[:16]}…: the writer changed; rerun scripts/tiny_fixtures.py")
        print(f"wrote    tests/fixtures/tiny/{arch}.gguf ({os.path.getsize(path) // 1024} KB)",
              flush=True)


def main():
    if "--models-only" in sys.argv:
        models_only()
        return
    lf.ensure_venv()
    os.makedirs(OUT, exist_ok=True)
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    for seed, arch in enumerate(NAMES, start=1):
        if only and arch not in only:
            continue
        src = os.path.join(MODELS, FAMILIES[VARIANTS.get(arch, (arch,))[0]][0])
        if not os.path.exists(src):
            sys.exit(f"{src} is missing: run `python3 scripts/fetch_models.py --all` first")
        path = os.path.join(OUT, f"{arch}.gguf")
        write_model(arch, path, seed)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        fx = lf.fixture_for({"id": f"tiny-{arch}", "sha256": sha}, path)
        fx["architecture"] = VARIANTS.get(arch, (arch,))[0]
        with open(os.path.join(OUT, f"{arch}.json"), "w") as f:
            json.dump(fx, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote    tests/fixtures/tiny/{arch}.gguf ({os.path.getsize(path) // 1024} KB) "
              f"and {arch}.json", flush=True)


if __name__ == "__main__":
    main()
