#!/usr/bin/env python3
"""Write llama.cpp reference fixtures for multiple-choice log-likelihood evaluation.

For every catalog model that is present, scores tests/fixtures/eval-items.jsonl the way
lm-evaluation-harness shapes a loglikelihood request, and writes tests/fixtures/eval-<id>.json:
  - the continuation of a choice is " " + choice; context + continuation is tokenized once as
    plain text (BOS per the GGUF), and its continuation ids are those after the first
    len(tokenize(context)) ids, even where the tokenizer merged across that boundary;
  - loglik is the sum of ln p(id | everything before it) over the continuation ids, greedy is
    lm-eval's is_greedy (every continuation id is the argmax at its position);
  - pred is the argmax of loglik, pred_norm the argmax of loglik / len(continuation) in
    characters (lm-eval's acc_norm); ties go to the first index.
Each sequence is one eval from a reset cache, with the F32 KV cache of llama_fixtures.py.
self_noise scores every sequence again one token at a time, as llama_fixtures.py does for score.

Usage: scripts/llama_eval_fixtures.py       (re-exec's itself inside the venv)
"""
import json
import math
import os
import sys
import time

sys.dont_write_bytecode = True  # no scripts/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_fixtures as lf  # noqa: E402  (constants and helpers only; main() is guarded)

ROOT = lf.ROOT
ITEMS = os.path.join(ROOT, "tests", "fixtures", "eval-items.jsonl")


def first_argmax(values):
    return max(range(len(values)), key=values.__getitem__)  # max() keeps the first of ties


def score(llm, ids, n_ctx, one_at_a_time=False):
    """(loglik, greedy) of ids[n_ctx:] given everything before, from a fresh cache."""
    import numpy as np

    llm.reset()
    if one_at_a_time:
        for t in ids:
            llm.eval([t])
    else:
        llm.eval(ids)
    rows = np.array(llm.scores[: len(ids)], dtype=np.float64)
    loglik, greedy = 0.0, True
    for i in range(n_ctx, len(ids)):
        row = rows[i - 1]
        loglik += lf.log_softmax(row.tolist())[ids[i]]
        greedy = greedy and int(np.argmax(row)) == ids[i]
    return loglik, greedy


def fixture_for(entry, path, items):
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, logits_all=True, n_threads=2,
                type_k=0, type_v=0, flash_attn=False, verbose=False)
    add_bos = lf.metadata_bool(llm, "tokenizer.ggml.add_bos_token", False)
    bos = llm.token_bos()

    def prompt_ids(text):
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)
        return ([bos] if add_bos else []) + ids

    out = {"model": entry["id"], "sha256": entry["sha256"],
           "oracle": f"llama-cpp-python {llama_cpp.__version__} (CPU, {lf.CMAKE_ARGS})",
           "kv_cache": "f32", "add_bos": add_bos, "items": []}
    diffs, pred_changes, merged = [], 0, 0
    for index, item in enumerate(items):
        ctx = prompt_ids(item["context"])
        choices, ll, ll1 = [], [], []
        for text in item["choices"]:
            cont = " " + text
            ids = prompt_ids(item["context"] + cont)
            if ids[: len(ctx)] != ctx:
                # The tokenizer merged the space (or more) into the context's tail: lm-eval
                # still cuts at len(ctx), so the fixture does too.
                merged += 1
            assert len(ids) > len(ctx), (entry["id"], index, text)
            loglik, greedy = score(llm, ids, len(ctx))
            loglik1, _ = score(llm, ids, len(ctx), one_at_a_time=True)
            choices.append({"text": text, "ids": ids, "continuation_ids": ids[len(ctx):],
                            "loglik": loglik, "greedy": greedy})
            ll.append(loglik)
            ll1.append(loglik1)
            diffs.append(abs(loglik - loglik1))
        pred = first_argmax(ll)
        # lm-eval's acc_norm divides by the choice's own length, without the space before it
        # (as the engine and the contract do); an empty choice gets -inf.
        norm = [x / len(c) if c else -math.inf for x, c in zip(ll, item["choices"])]
        pred_changes += pred != first_argmax(ll1)
        out["items"].append({"index": index, "context_ids": ctx, "choices": choices,
                             "answer": item["answer"], "pred": pred,
                             "pred_norm": first_argmax(norm)})
    out["self_noise"] = {"what": "llama.cpp batch vs one token at a time",
                         "loglik_mae": sum(diffs) / len(diffs), "loglik_max": max(diffs),
                         "pred_changes": pred_changes}
    return out, merged


def main():
    lf.ensure_venv()
    with open(os.path.join(ROOT, "assets", "models", "catalog.json")) as f:
        catalog = json.load(f)
    with open(ITEMS) as f:
        items = [json.loads(line) for line in f if line.strip()]
    for entry in catalog["models"]:
        path = os.path.join(ROOT, "assets", "models", entry["file"])
        if not os.path.exists(path):
            print(f"skip     {entry['id']} (not fetched)")
            continue
        start = time.time()
        fx, merged = fixture_for(entry, path, items)
        dest = os.path.join(ROOT, "tests", "fixtures", f"eval-{entry['id']}.json")
        with open(dest, "w") as f:
            json.dump(fx, f, ensure_ascii=False, indent=1)
            f.write("\n")
        n = len(fx["items"])
        acc = sum(it["pred"] == it["answer"] for it in fx["items"]) / n
        acc_norm = sum(it["pred_norm"] == it["answer"] for it in fx["items"]) / n
        sn = fx["self_noise"]
        print(f"wrote    {os.path.relpath(dest, ROOT)}: acc {acc:.3f} acc_norm {acc_norm:.3f} "
              f"self_noise mae {sn['loglik_mae']:.2e} max {sn['loglik_max']:.2e} "
              f"pred_changes {sn['pred_changes']} merged_boundaries {merged} "
              f"({time.time() - start:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
