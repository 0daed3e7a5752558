#!/usr/bin/env python3
"""llama.cpp's split of text for each `tokenizer.ggml.pre` name, as a fixture.

A byte-level BPE model's GGUF names how text is cut into words before the merges
(`tokenizer.ggml.pre`): llama.cpp keeps a regex list per name and refuses names it does not
know. The catalog's models use only `smollm` and `qwen2`, so the other names are checked here on
vocabulary-only files: SmolLM2's tokenizer metadata with the name replaced (or left out, which
llama.cpp reads as `default`), each tokenized by llama.cpp (`vocab_only`) over a set of texts
chosen to tell the regex lists apart (digit runs, punctuation before words, contractions in
capitals, CJK, newlines after symbols), with a few tokens and merges added to the vocabulary
so that those differences show in the ids. Writes tests/fixtures/pretokenizers.json: the texts,
per accepted name the ids of each text, and the names llama.cpp refused;
tests/pretokenizers.rs builds the same files in memory and compares. It also records what
llama.cpp makes of user-defined tokens whose text it knows as end-of-turn or fill-in-the-middle
markers (it retypes them as control tokens).

Usage: scripts/pretokenizer_fixtures.py   (re-exec's itself inside the llama venv)
"""
import hashlib
import json
import re
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_fixtures as lf  # noqa: E402

SOURCE = os.path.join(lf.ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(lf.ROOT, "tests", "fixtures", "pretokenizers.json")
# Left out of the file; llama.cpp reads a missing name as `default`.
MISSING = "(missing)"

# Every name llama.cpp's loader has listed, some aliases of them, and names it never had.
NAMES = [
    MISSING, "", "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
    "midm-2.0", "lfm2", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "mpt",
    "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
    "a.x-4.0", "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "refact", "command-r",
    "qwen2", "deepseek-r1-qwen", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "glm4",
    "chatglm-bpe", "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish",
    "exaone", "exaone4", "chameleon", "minerva-7b", "megrez", "gpt-4o", "llama4", "superbpe",
    "trillion", "bailingmoe", "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "kimi-k2",
    "grok-2", "granite-docling", "minimax-m2",
    # Added to llama.cpp's loader since (checked against its source below).
    "jina-v5-nano", "spark2_5", "youtu", "modern-bert", "jais-2", "gemma4",
    "granite-embed-multi-311m", "sarvam-moe", "whitespace", "kormo", "f2llmv2", "qwen35", "glm5",
    "exaone-moe", "kanana2", "talkie", "granite-embed-multi-97m", "tiny_aya", "cohere2moe",
    "bailingmoe2", "hy_v4", "joyai-llm", "ufakzeka", "afmoe", "laguna", "minicpm5", "solar-open",
    "mellum2",
    # Not llama.cpp's: an engine that guesses a split for these gives numbers that look real.
    "minerva", "gpt2", "Qwen2", "no-such-pre", "llama 3",
]

# SmolLM2's own merges cannot tell most regex lists apart: its digits are single tokens, and
# no merge joins a symbol to a newline or to the letter after it. These extra tokens and
# merges, ranked before all of SmolLM2's, can: each spans a place where some lists cut and
# others do not (byte-level text: "Ġ" is a space, "Ċ" a newline, "æĹ¥æľ¬" is 日本). "ĠXYZZY" has no merges: only a
# list whose words may be whole tokens (llama.cpp's `ignore_merges`) reads " XYZZY" as one.
FIRST_MERGES = [
    "1 2", "12 3", "123 4", "1234 5", "4 5", "5 6", "7 8", "9 0", "Ġ 1", "$ 1", "' T", "' S",
    "( p", "! Ċ", "? Ċ", "Ġ ,", "Ġ ;", "P S", "æ Ĺ", "æĹ ¥", "æ ľ", "æľ ¬", "æĹ¥ æľ¬", ". Ċ", "ĉ ĉ", "Ġ Ġ",
]
EXTRA_TOKENS = [
    "12", "123", "1234", "12345", "45", "56", "78", "90", "Ġ1", "$1", "'T", "'S", "(p", "!Ċ",
    "?Ċ", "Ġ,", "Ġ;", "PS", "æĹ", "æĹ¥", "æľ", "æľ¬", "æĹ¥æľ¬", ".Ċ", "ĉĉ", "ĠĠ", "ĠXYZZY",
]



def byte_level(text):
    """GPT-2's printable form of `text`'s UTF-8 bytes, as byte-level vocabularies store it."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return "".join(table[b] for b in text.encode())


def chain(text):
    """Merges (and their tokens) that build `text` one character of its byte-level form at a
    time, left to right."""
    form = byte_level(text)
    merges, tokens = [], []
    for i in range(1, len(form)):
        merges.append(f"{form[:i]} {form[i]}")
        tokens.append(form[:i + 1])
    return merges, tokens


# Across a case change ("camelCase": GPT-4o's and Tekken's lists cut there; "γδΑΒ", which their
# `[^a-z]`/`[^A-Z]` classes do not cut, unlike tokenizer.json's `\p{Lu}`/`\p{Ll}` form that
# llama.cpp keeps only as a comment) and across a full-width comma and the Han character after
# it (DeepSeek-V3's list isolates Han runs).
# Also a letter and the combining mark after it (Qwen3.5 keeps them one word, Qwen2 does not),
# and an ideographic space between full stops (DeepSeek LLM's punctuation range starts at it,
# but llama.cpp has made it a vertical tab by then).
# A Turkish suffix after an apostrophe ("'da": UfakZeka keeps it on its word, Qwen2 cuts "'d").
for joined in ["lC", "eW", "，还", "γδΑΒ", "e\u0301", "。", "'da"]:
    m, t = chain(joined)
    FIRST_MERGES += m
    EXTRA_TOKENS += t
# A chain cannot build "。\u3000" (its first merge takes both "ãĢ" at once): pairs instead.
FIRST_MERGES += ["ãĢ Ģ", "ãĢĤ ãĢĢ"]
EXTRA_TOKENS += ["ãĢĢ", "ãĢĤãĢĢ"]

TEXTS = [
    "He said XYZZY and xyzzy, then XYZZY!\nOK? \nyes.\n",
    "Hello world",
    "12345 apples and 1234567890 pears, 3.14159 and 1,000,000 $12 7890",
    "x , y ; z . w",
    "hello!!! world??? ok...",
    "a+b=c $100 <=> ^~| `code` @user #tag",
    "I'm sure you'll see they've done it. DON'T YOU'LL WE'VE",
    "  leading spaces and trailing   ",
    "Whitespace\truns\n\n\nand\r\nnewlines    here\t\t\tend",
    "日本語のテキストと中文文本，还有한국어。",
    "Ωmega αβγ Привет мир مرحبا שלום हिन्दी",
    "camelCaseWords and HTTPServer, XMLHttpRequest; PascalCase",
    'fn main() {\n    let x: Vec<u32> = vec![1, 2, 3];\n    println!("{x:?}");\n}',
    "def f(a, b):\n\treturn a ** 2 + b // 3  # comment\n",
    "Family: 👨‍👩‍👧‍👦 and flags 🇯🇵 done…",
    "(parenthesis) [brackets] {braces} «quotes» “curly” ‘single’",
    "end of line!\nnext line?\r\n\r\nlast",
    "Café naïve Zürich e\u0301",
    "Greek in two cases: γδΑΒ and ΑΒγδ, xγδΑΒy",
    # Bytes SmolLM2's vocabulary has no token for: llama.cpp never merges across one.
    "!\x04! ...\x13... ))\x14) x += \x16= 1 \x06’s >\"\x1d' a\x04\x04b",
    # Characters Unicode 16 added, which llama.cpp's Unicode 15.1 tables call undefined
    # (punctuation to its splitters): letters, outlined digits, a mark, symbols.
    "\ua7cb's \ua7cc'T and  \U0001ccf0\U0001ccf1 12 \U00013460\U00013461x, a\u0897b \u2427! \U00010d40 9",
    # Digits inside words and outside 0-9 (the lists that group digits by three, or by the
    # run), combining marks that open a word (Qwen3.5 keeps marks in words), and Korean,
    # Bopomofo and full-width punctuation (Youtu's first list).
    "x1234y abc123def ①②③ ²³ Ⅻ 12345678 9\u0301 \u0301abc  \u0301x e\u0301\u0302 a\u0308b",
    "ㄱㄴ 한국 ㄅㄆ！…“yes”：；，、〜︰ok x。\u3000。y Ankara'dan İstanbul'a",
    # Runs of spaces of many lengths (Jais 2 cuts them in powers of two), words joined by
    # single spaces (EXAONE-MoE), an ideographic and a no-break space, trailing spaces.
    "a" + " " * 19 + "b\t\t\t\t\t\t\t\t\tc" + " " * 600 + "d word pair/slash\u3000x\u3000 y\u00a0z end   ",
]


def strings(field):
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def known(field):
    return set(strings(field))


# Texts llama.cpp's loader retypes as control tokens when a vocabulary has them as
# user-defined ones (end of turn, fill-in-the-middle), found by trying each; and some it leaves.
# Each is added alone, user-defined, to SmolLM2's vocabulary; the fixture records llama.cpp's
# ids for the text itself (control tokens are not read from plain text) and whether the token
# ends a generation. llama.cpp takes one token per marker kind (the first its map yields); the
# repository markers are left out here because SmolLM2 holds one already (`<reponame>`), so
# llama.cpp leaves a second alone; the catalog models' end-of-generation sets check them.
USER_DEFINED_TEXTS = [
    "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "<｜end▁of▁sentence｜>", "<end_of_utterance>", "</s>", "<|return|>", "<|call|>", "<|eom_id|>",
    "<|fim_pad|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<fim-prefix>",
    "<fim-suffix>", "<fim-middle>", "<|file_sep|>", "<|endofprompt|>",
    "<|calls|>", "<|flush|>", "[EOS]", "<eos>", "<|end_of_turn|>", "<fim_suffix>", "<fim_middle>",
    "<fim_prefix>", "<fim_pad>", "<|fim▁begin|>", "<PRE>", "<SUF>", "<MID>", "▁<PRE>",
    "<｜fim▁hole｜>", "<|fim▁end|>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "▁<SUF>", "▁<MID>",
    "<fim-pad>", "<fim_sep>", "<|fim_sep|>", "<start_of_turn>", "<bos>",
    "<|user|>", "<|END_OF_TURN_TOKEN|>", "</think>",
]


def with_types(f, added, kind):
    return [f.parts[i][0].item() for i in f.data] + [kind] * len(added)


def extended(extra, merges, kind):
    """Metadata rewrites: `extra` tokens (those not in the vocabulary yet) of type `kind`,
    `merges` ranked before the vocabulary's own."""
    def added(reader):
        have = known(reader.fields["tokenizer.ggml.tokens"])
        return [t for t in extra if t not in have]
    return {
        "tokenizer.ggml.tokens": lambda r, f: strings(f) + added(r),
        "tokenizer.ggml.token_type": lambda r, f: with_types(f, added(r), kind),
        "tokenizer.ggml.merges": lambda r, f: merges + strings(f),
    }


EXTENDED = extended(EXTRA_TOKENS, FIRST_MERGES, 1)


def write_vocab_only(reader, path, pre, EXTENDED=EXTENDED):
    import gguf

    w = gguf.GGUFWriter(path, "llama")
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "tokenizer.ggml.pre":
            if pre != MISSING:
                w.add_string(name, pre)
            continue
        if name in EXTENDED:
            w.add_array(name, EXTENDED[name](reader, field))
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            if field.types[1] == gguf.GGUFValueType.STRING:
                values = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                values = [field.parts[i][0].item() for i in field.data]
            w.add_array(name, values)
        elif kind == gguf.GGUFValueType.STRING:
            w.add_string(name, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(name, field.parts[field.data[0]][0].item(), kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def split_all(llama_cpp, path):
    try:
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    except Exception:
        return "refused"
    return [llm.tokenize(t.encode(), add_bos=False, special=False) for t in TEXTS]


def in_child(work):
    """`work()`'s JSON result from a forked process, or None when it died: llama.cpp aborts
    (GGML_ASSERT) on a byte-level vocabulary under the names of SentencePiece-style BPE
    (`gemma4`, `sarvam-moe`, `whitespace`), whose merges may not hold a space."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            with os.fdopen(w, "w") as out:
                json.dump(work(), out)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    return json.loads(text) if os.WIFEXITED(status) and text else None


def llama_cpp_names():
    """Every `tokenizer.ggml.pre` name the pinned llama.cpp's loader knows, read from its source
    (the package scripts/fetch_llama_tests.py verifies)."""
    import tarfile

    import fetch_llama_tests as flt

    member = flt.MEMBER_DIR.replace("models/", "src/llama-vocab.cpp")
    with tarfile.open(flt.sdist(), "r:gz") as tar:
        source = tar.extractfile(member).read().decode()
    return set(re.findall(r'tokenizer_pre == "([^"]*)"', source))


def main():
    unlisted = sorted(llama_cpp_names() - set(NAMES))
    if unlisted:
        sys.exit(f"error: llama.cpp knows pre-tokenizer names not in NAMES: {', '.join(unlisted)}")
    lf.ensure_venv()
    import gguf
    import llama_cpp

    with open(SOURCE, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    reader = gguf.GGUFReader(SOURCE)
    accepted, refused, aborted = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, pre in enumerate(NAMES):
            path = os.path.join(tmp, f"{i}.gguf")
            write_vocab_only(reader, path, pre)
            ids = in_child(lambda: split_all(llama_cpp, path))
            if ids == "refused":
                refused.append(pre)
            elif ids is None:
                aborted.append(pre)
            else:
                accepted[pre] = ids
        user_defined = {}
        n_vocab = len(strings(reader.fields["tokenizer.ggml.tokens"]))
        for i, text in enumerate(USER_DEFINED_TEXTS):
            path = os.path.join(tmp, f"user-{i}.gguf")
            write_vocab_only(reader, path, "smollm", extended([text], [], 4))
            llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            user_defined[text] = {
                "ids": llm.tokenize(text.encode(), add_bos=False, special=False),
                "end_of_generation": bool(llama_cpp.llama_vocab_is_eog(vocab, n_vocab)),
            }
            del llm
    # The tokens that end a generation in each catalog model, as llama.cpp's loader finds them
    # (the declared EOS, and the texts it knows as ends of turn and markers, whatever type).
    end_of_generation = {}
    for name in sorted(os.listdir(os.path.dirname(SOURCE))):
        if not name.endswith(".gguf"):
            continue
        llm = llama_cpp.Llama(model_path=os.path.join(os.path.dirname(SOURCE), name),
                              vocab_only=True, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        n = llama_cpp.llama_vocab_n_tokens(vocab)
        end_of_generation[name] = [i for i in range(n) if llama_cpp.llama_vocab_is_eog(vocab, i)]
        del llm
    fixture = {
        "source": os.path.basename(SOURCE),
        "source_sha256": sha,
        "llama_cpp_python": lf.LLAMA_CPP_PYTHON,
        "missing": MISSING,
        "extra_tokens": EXTRA_TOKENS,
        "first_merges": FIRST_MERGES,
        "texts": TEXTS,
        "accepted": accepted,
        "user_defined": user_defined,
        "end_of_generation": end_of_generation,
        "refused": refused,
        "aborted": aborted,
    }
    # One line per list of ids: the ids of 65 names × 18 texts, one a line, were 26,000 lines.
    lists = []

    def mark(o):
        if isinstance(o, list) and o and all(isinstance(x, int) for x in o):
            lists.append(json.dumps(o, separators=(",", ":")))
            return f"@ids{len(lists) - 1}@"
        if isinstance(o, list):
            return [mark(x) for x in o]
        if isinstance(o, dict):
            return {k: mark(v) for k, v in o.items()}
        return o

    text = json.dumps(mark(fixture), ensure_ascii=False, indent=1)
    text = re.sub(r'"@ids(\d+)@"', lambda m: lists[int(m.group(1))], text)
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"wrote {os.path.relpath(OUT, lf.ROOT)}: {len(accepted)} names accepted, "
          f"{len(refused)} refused ({', '.join(refused)}), "
          f"{len(aborted)} abort llama.cpp ({', '.join(aborted)})")


if __name__ == "__main__":
    main()
