#!/usr/bin/env python3
"""Write llama.cpp reference fixtures for every catalog model that is present.

llama.cpp is the oracle for GGUF. This builds `llama-cpp-python` from PyPI into a virtual
environment outside the clone (once; about 5 minutes) and, for each model under assets/models/,
writes tests/fixtures/<id>.json with:
  - tokenize: ids for a set of strings (unicode, whitespace, code, numbers, special-token text),
    no BOS/EOS and special-token text parsed as plain text;
  - greedy:   prompt ids (BOS per the GGUF) and 32 greedy ids with per-token entropy/surprisal;
  - chat:     chat-template prompt ids, rendered by jinja2 the way Hugging Face does;
  - score:    per-token surprisal, entropy and rank of a paragraph, and its perplexity;
  - fidelity: per-token surprisal of another paragraph (used nowhere else) under each of
              llama.cpp's own configurations: F32 or F16 KV cache, one batch or one token at
              a time. How far those are from each other is how far an engine may be.
The KV cache is kept in F32 (llama.cpp's default is F16) so that differences measure the
engines, not a cache format the engine under test does not use.

Usage: scripts/llama_fixtures.py            (re-exec's itself inside the venv)
       scripts/llama_fixtures.py --fidelity (adds or rewrites only `fidelity` in each fixture)
"""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get(
    "TINYLAB_LLAMA_VENV", os.path.join(os.path.expanduser("~"), ".cache", "tinylab", "llama-venv")
)
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
# llama.cpp's own GGUF writer, for scripts/tiny_fixtures.py.
GGUF = "gguf==0.19.0"
# Portable flags: a -march=native build has crashed on some of these machines.
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF"

TOKENIZE_STRINGS = [
    "Hello world",
    "The three primary colors are",
    "  leading spaces and trailing   ",
    "Whitespace\truns\n\n\nand\r\nnewlines    here\t\t\tend",
    "日本語のテキストと中文文本，还有한국어",
    "Family: 👨‍👩‍👧‍👦 and flags 🇯🇵 🏳️‍🌈 done",
    "Café vs Cafe\u0301, naïve, Zürich, ñ, e\u0308\u0323",
    'fn main() {\n    let x: Vec<u32> = vec![1, 2, 3];\n    println!("{x:?}");\n}',
    "def f(a, b):\n\treturn a ** 2 + b // 3  # comment",
    "3.14159 1234567890 1,000,000 2026-11-24 0x1F 12345678901234567890",
    "<|im_start|>user\nHi<|im_end|> <start_of_turn>model <bos> <eos> <|endoftext|>",
    "I'm sure you'll see they've done it, isn't it? DON'T YOU'LL",
    "Ωmega αβγ Привет мир مرحبا שלום हिन्दी",
    '<div class="x">a &amp; b</div>',
    "aaaaaaaaaaaaaaaaaaaa!!!!!!!???......",
    "a          b\n \n  \n",
    "Mixed_CASE-identifiers likeThis and snake_case_words",
]

GREEDY_PROMPTS = [
    "The three primary colors are",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The capital of France is",
]

CHAT_PROMPTS = ["What is the capital of France?", "Write a haiku about <b>rain</b> & snow."]

SCORE_TEXT = (
    "The old lighthouse keeper had not spoken to anyone in three weeks when the storm arrived. "
    "He watched the clouds pile up over the headland, grey on grey, and counted the seconds "
    "between the lightning and the thunder the way his father had taught him. Nine, then seven, "
    "then four. By midnight the rain came sideways and the lamp above him turned and turned, "
    "throwing its long white arm across the water for ships that, as far as he could tell, "
    "no longer came."
)

# Held out: no test or tolerance was tuned on it.
FIDELITY_TEXT = (
    "To make bread rise, bakers rely on yeast, a single-celled fungus that eats sugar and "
    "gives off carbon dioxide. The gas is trapped by a web of gluten, which forms when flour "
    "is mixed with water and kneaded. A warm kitchen speeds the process up; a cold one slows "
    "it down, and some bakers leave their dough in the fridge overnight on purpose, because "
    "the slower rise gives the finished loaf a deeper, slightly sour flavour."
)
# llama.cpp's configurations an engine is measured against: KV cache type (ggml type id) and
# whether the text goes in as one batch or one token at a time.
FIDELITY_CONFIGS = [("f32_batch", 0, False), ("f32_single", 0, True),
                    ("f16_batch", 1, False), ("f16_single", 1, True)]

GREEDY_TOKENS = 32


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    # A venv whose creation failed halfway (no ensurepip) has a python but no pip: made again.
    has_pip = os.path.exists(py) and subprocess.run(
        [py, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if not has_pip:
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    probe = subprocess.run([py, "-c", "import llama_cpp, jinja2, gguf"], capture_output=True)
    if probe.returncode != 0:
        print(f"building {LLAMA_CPP_PYTHON} (about 5 minutes)...", flush=True)
        env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS)
        subprocess.run([py, "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON, "jinja2", GGUF],
                       check=True, env=env)
    os.execv(py, [py] + sys.argv)


def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def stats(row, target):
    lp = log_softmax(row)
    ent = -sum(math.exp(x) * x for x in lp)
    rank = sum(1 for x in row if x > row[target])
    return -lp[target], ent, rank


def metadata_bool(llm, key, default):
    v = llm.metadata.get(key)
    return default if v is None else v == "true"


def piece(vocab, token):
    import ctypes
    import llama_cpp

    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        if n >= 0:
            return bytes(buf[:n])
        size = -n


def special_texts(llm):
    """Each non-normal token's text inside a sentence, for the files that have few of them."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    normal, byte = 1 << 2, 1 << 5  # LLAMA_TOKEN_ATTR_NORMAL, _BYTE
    odd = [i for i in range(llm.n_vocab())
           if not llama_cpp.llama_vocab_get_attr(vocab, i) & (normal | byte)]
    if len(odd) > 400:
        return []
    return ["a " + llm._model.token_get_text(i) + " b" for i in odd]


def fixture_for(entry, path):
    import jinja2
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, logits_all=True, n_threads=2,
                type_k=0, type_v=0, flash_attn=False, verbose=False)
    # llama.cpp's own answer, which has its defaults where a file has no key (SentencePiece
    # adds BOS, byte-level BPE does not).
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    bos = llm.token_bos()
    out = {"model": entry["id"], "sha256": entry["sha256"], "oracle": LLAMA_CPP_PYTHON,
           "kv_cache": "f32", "add_bos": add_bos}

    out["tokenize"] = [
        {"text": s, "ids": llm.tokenize(s.encode(), add_bos=False, special=False)}
        for s in TOKENIZE_STRINGS
    ]
    # With special-token text read as those tokens (llama.cpp reads control and unknown
    # tokens' text so; user-defined ones always).
    out["tokenize_special"] = [
        {"text": s, "ids": llm.tokenize(s.encode(), add_bos=False, special=True)}
        for s in TOKENIZE_STRINGS + special_texts(llm)
    ]
    # What each token writes into generated text (`token_to_piece` without special tokens),
    # hex, for files small enough to list.
    if llm.n_vocab() <= 20000:
        out["pieces"] = [piece(vocab, i).hex() for i in range(llm.n_vocab())]

    # llama.cpp's own special tokens, as its tools add them (`add_bos` here is its
    # `add_special`): BOS first and EOS last where the file asks for each.
    add_eos = bool(llama_cpp.llama_vocab_get_add_eos(vocab))
    out["add_eos"] = add_eos

    def prompt_ids(text, special=False):
        return llm.tokenize(text.encode(), add_bos=True, special=special)

    # Every token llama.cpp ends a generation on (its end of text and of turn, and the
    # fill-in-the-middle markers it counts as ends, e.g. Qwen's <|repo_name|>). The Python
    # class has no such method, so the C API is asked; only the EOS token was taken before.
    eog = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    out["eog"] = sorted(eog)

    greedy = []
    for p in GREEDY_PROMPTS:
        ids = prompt_ids(p)
        llm.reset()
        llm.eval(ids)
        gen, ents, surps, margins, runner_up = [], [], [], [], []
        stop = "length"
        for _ in range(GREEDY_TOKENS):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            order = np.argsort(-row, kind="stable")
            tok = int(order[0])
            if tok in eog:
                stop = "eos"
                break
            s, e, _ = stats(row.tolist(), tok)
            gen.append(tok)
            ents.append(e)
            surps.append(s)
            # How close the runner-up came: near ties are where engines may legitimately part.
            margins.append(float(row[order[0]] - row[order[1]]))
            runner_up.append([[int(i), float(row[order[0]] - row[i])] for i in order[1:6]
                              if row[order[0]] - row[i] < 0.5])
            llm.eval([tok])
        greedy.append({"prompt": p, "prompt_ids": ids, "ids": gen, "stop_reason": stop,
                       "entropy": ents, "surprisal": surps, "margin": margins,
                       "close": runner_up})
    out["greedy"] = greedy

    template = llm.metadata.get("tokenizer.chat_template")
    out["chat"] = []
    if template:
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        bos_text = llm._model.token_get_text(bos) if bos >= 0 else ""
        for p in CHAT_PROMPTS:
            text = env.from_string(template).render(
                messages=[{"role": "user", "content": p}], add_generation_prompt=True,
                bos_token=bos_text, eos_token="")
            if add_bos and text.startswith(bos_text):
                text = text[len(bos_text):]
            out["chat"].append({"prompt": p, "rendered": text,
                                "prompt_ids": prompt_ids(text, special=True)})

    ids = prompt_ids(SCORE_TEXT)
    llm.reset()
    llm.eval(ids)
    rows = np.array(llm.scores[: len(ids)], dtype=np.float64)
    surp, ent, rank = [], [], []
    for i in range(1, len(ids)):
        s, e, r = stats(rows[i - 1].tolist(), ids[i])
        surp.append(s)
        ent.append(e)
        rank.append(r)
    # llama.cpp's own noise floor: the same text fed one token at a time takes other kernels
    # than one batch, and the answers differ by about as much as two engines do.
    llm.reset()
    for t in ids:
        llm.eval([t])
    rows1 = np.array(llm.scores[: len(ids)], dtype=np.float64)
    surp1 = [stats(rows1[i - 1].tolist(), ids[i])[0] for i in range(1, len(ids))]
    ppl = math.exp(sum(surp) / len(surp))
    ppl1 = math.exp(sum(surp1) / len(surp1))
    # And with llama.cpp's default F16 KV cache: another rounding of the same maths. On tiny
    # models batch and single take the same kernels, so this is the spread that is not zero.
    llm16 = Llama(model_path=path, n_ctx=1024, n_batch=512, logits_all=True, n_threads=2,
                  type_k=1, type_v=1, flash_attn=False, verbose=False)
    llm16.eval(ids)
    rows16 = np.array(llm16.scores[: len(ids)], dtype=np.float64)
    surp16 = [stats(rows16[i - 1].tolist(), ids[i])[0] for i in range(1, len(ids))]
    ppl16 = math.exp(sum(surp16) / len(surp16))
    del llm16
    out["score"] = {"text": SCORE_TEXT, "ids": ids, "surprisal": surp, "entropy": ent,
                    "rank": rank, "perplexity": ppl,
                    "self_noise": {
                        "what": "llama.cpp batch vs one-token-at-a-time on the same text",
                        "surprisal_mae": sum(abs(a - b) for a, b in zip(surp, surp1)) / len(surp),
                        "surprisal_max": max(abs(a - b) for a, b in zip(surp, surp1)),
                        "perplexity_rel": abs(ppl - ppl1) / ppl},
                    "kv_f16_noise": {
                        "what": "llama.cpp F32 vs F16 KV cache, both batched, on the same text",
                        "surprisal_mae": sum(abs(a - b) for a, b in zip(surp, surp16)) / len(surp),
                        "surprisal_max": max(abs(a - b) for a, b in zip(surp, surp16)),
                        "perplexity_rel": abs(ppl - ppl16) / ppl}}
    return out


def surprisals(rows, ids):
    """Per-token surprisal of ids[1:], from logits rows (numpy, vectorized over the vocabulary)."""
    import numpy as np
    rows = np.asarray(rows, dtype=np.float64)
    m = rows.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(rows - m).sum(axis=1, keepdims=True)))[:, 0]
    return [float(lse[i - 1] - rows[i - 1, ids[i]]) for i in range(1, len(ids))]


def fidelity_for(path):
    from llama_cpp import Llama
    out = {"what": "per-token surprisal of `text` under each llama.cpp configuration",
           "text": FIDELITY_TEXT, "surprisal": {}}
    for name, kv, single in FIDELITY_CONFIGS:
        llm = Llama(model_path=path, n_ctx=1024, n_batch=512, logits_all=True, n_threads=2,
                    type_k=kv, type_v=kv, flash_attn=False, verbose=False)
        add_bos = metadata_bool(llm, "tokenizer.ggml.add_bos_token", False)
        ids = ([llm.token_bos()] if add_bos else []) + llm.tokenize(
            FIDELITY_TEXT.encode(), add_bos=False, special=False)
        out["ids"] = ids
        llm.reset()
        if single:
            for t in ids:
                llm.eval([t])
        else:
            llm.eval(ids)
        out["surprisal"][name] = surprisals(llm.scores[: len(ids)], ids)
        del llm
    return out


def main():
    ensure_venv()
    if "--venv-only" in sys.argv:
        # scripts/bench.sh: only make sure llama-cpp-python is built.
        return
    with open(os.path.join(ROOT, "assets", "models", "catalog.json")) as f:
        catalog = json.load(f)
    os.makedirs(os.path.join(ROOT, "tests", "fixtures"), exist_ok=True)
    for entry in catalog["models"]:
        path = os.path.join(ROOT, "assets", "models", entry["file"])
        if not os.path.exists(path):
            print(f"skip     {entry['id']} (not fetched)")
            continue
        dest = os.path.join(ROOT, "tests", "fixtures", f"{entry['id']}.json")
        if "--fidelity" in sys.argv:
            with open(dest) as f:
                fx = json.load(f)
            if fx.get("sha256") != entry["sha256"]:
                sys.exit(f"{dest} is for another file; run without --fidelity")
        else:
            fx = fixture_for(entry, path)
        fx["fidelity"] = fidelity_for(path)
        with open(dest, "w") as f:
            json.dump(fx, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote    {os.path.relpath(dest, ROOT)}", flush=True)


if __name__ == "__main__":
    main()
