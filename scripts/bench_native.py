#!/usr/bin/env python3
"""Native speed, side by side: tinylab's CLI `bench` against llama.cpp (llama-cpp-python, built
by scripts/llama_fixtures.py's venv) on every fetched catalog model, in one run, one thread each.

Both engines get the same shape of work: a 128-token prompt of the same English passage,
a warm-up, then prefill and 64 greedy decode steps with EOS ignored. Prints a table and writes
JSON to docs/bench-native.json.

Usage: scripts/bench_native.py [--threads N]
       scripts/bench_native.py --llama-once MODEL.gguf   (one llama.cpp run, JSON on stdout:
                                                           tests/bench/run.mjs's paired rounds)
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(os.path.expanduser("~"), ".cache", "tinylab", "llama-venv", "bin", "python")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.expanduser("~"), ".cache", "tinylab", "target"))
PROMPT_TOKENS, GEN_TOKENS = 128, 64

LLAMA_BENCH = r'''
import json, sys, time, resource
import llama_cpp
import numpy as np
from llama_cpp import Llama
path, text, threads, n_prompt, n_gen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
llm = Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
load = time.perf_counter() - t0
add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token") == "true"
ids = [llm.token_bos()] if add_bos else []
while len(ids) < n_prompt:
    ids += llm.tokenize(text.encode(), add_bos=False, special=False)
ids = ids[:n_prompt]
def run(gen):
    llm.reset()
    t = time.perf_counter(); llm.eval(ids); p = time.perf_counter() - t
    t = time.perf_counter()
    nv = llm.n_vocab()
    for _ in range(gen):
        # Without logits_all, llama-cpp-python leaves `scores` at zero: read the last logits
        # from the context, so the decode really is greedy.
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(nv,))
        llm.eval([int(row.argmax())])
    return p, time.perf_counter() - t
run(4)
p, d = run(n_gen)
print(json.dumps({"engine": "llama.cpp (llama-cpp-python)", "load_ms": load * 1000,
  "prefill_tokens_per_s": n_prompt / p, "decode_tokens_per_s": n_gen / d,
  "time_to_first_token_ms": p * 1000,
  "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
'''


def bench_text():
    src = open(os.path.join(ROOT, "src", "bench.rs")).read()
    start = src.index('BENCH_TEXT: &str = "') + len('BENCH_TEXT: &str = "')
    body = src[start:src.index('";', start)]
    return body.replace("\\\n", "")


def llama_cpp_run(path, threads):
    return json.loads(subprocess.run(
        [VENV_PY, "-c", LLAMA_BENCH, path, bench_text(), str(threads),
         str(PROMPT_TOKENS), str(GEN_TOKENS)],
        check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--llama-once", metavar="GGUF")
    args = ap.parse_args()
    if args.llama_once:
        print(json.dumps(llama_cpp_run(args.llama_once, args.threads)))
        return
    catalog = json.load(open(os.path.join(ROOT, "assets", "models", "catalog.json")))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    exe = os.path.join(TARGET, "release", "tinylab")
    rows = []
    for m in catalog["models"]:
        path = os.path.join(ROOT, "assets", "models", m["file"])
        if not os.path.exists(path):
            continue
        ours = json.loads(subprocess.run(
            [exe, "bench", "--model", path, "--threads", str(args.threads), "--json",
             "--prompt-tokens", str(PROMPT_TOKENS), "--gen-tokens", str(GEN_TOKENS)],
            check=True, capture_output=True, text=True).stdout)
        ref = llama_cpp_run(path, args.threads)
        rows.append({"model": m["id"], "tinylab": ours, "llama_cpp": ref})
    print(f"{'model':32} {'engine':10} {'prefill t/s':>12} {'decode t/s':>11} {'load ms':>8} {'peak MB':>8}")
    for r in rows:
        for name, v in (("tinylab", r["tinylab"]), ("llama.cpp", r["llama_cpp"])):
            print(f"{r['model']:32} {name:10} {v['prefill_tokens_per_s']:12.1f} "
                  f"{v['decode_tokens_per_s']:11.1f} {v['load_ms']:8.0f} "
                  f"{(v['peak_memory_bytes'] or 0) / 2**20:8.0f}")
        pr = r["tinylab"]["prefill_tokens_per_s"] / r["llama_cpp"]["prefill_tokens_per_s"]
        dr = r["tinylab"]["decode_tokens_per_s"] / r["llama_cpp"]["decode_tokens_per_s"]
        r["ratio_prefill"], r["ratio_decode"] = pr, dr
        print(f"{'':32} {'ours/ref':10} {pr:12.2f} {dr:11.2f}")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "threads": args.threads, "prompt_tokens": PROMPT_TOKENS, "gen_tokens": GEN_TOKENS, "rows": rows}
    os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
    with open(os.path.join(ROOT, "docs", "bench-native.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
