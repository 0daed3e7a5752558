#!/usr/bin/env python3
"""Fetch llama.cpp's own test files into assets/llama-tests/.

llama.cpp keeps vocabulary-only GGUFs of many model families (`models/ggml-vocab-*.gguf`), each
with texts (`.inp`) and the ids its tokenizer must give for them (`.out`), which its
`test-tokenizer-0` checks, and the chat templates of many models (`models/templates/*.jinja`).
They ship inside the llama-cpp-python source package on PyPI, the same pinned version the
fixture scripts build as the oracle. This downloads that package once (kept outside the clone),
verifies its sha256, and unpacks only those files into `vocab/` and `templates/`; a directory
that is already complete is left alone. `tests/llama_vocab.rs` runs every text through
TinyLab's tokenizer; `tests/chat_templates.rs` renders every template.

Usage: fetch_llama_tests.py
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "assets", "llama-tests")
PACKAGE = "llama-cpp-python==0.3.36"
SDIST = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
MEMBER_DIR = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
# Which files of MEMBER_DIR, and the folder each goes to.
WANTED = (("ggml-vocab-", "vocab"), ("templates/", "templates"))
# Written last, so a directory with it holds every file of this version.
STAMP = ".complete-" + SDIST_SHA256[:16]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fetch_models import WHEEL_CACHE as CACHE, sha256_of  # noqa: E402


def sdist():
    path = os.path.join(CACHE, SDIST)
    if os.path.isfile(path) and sha256_of(path) == SDIST_SHA256:
        return path
    os.makedirs(CACHE, exist_ok=True)
    print(f"download {PACKAGE} (source package, {SDIST})", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--no-binary", "llama-cpp-python", "-d", CACHE, PACKAGE],
        check=True,
    )
    if not os.path.isfile(path):
        sys.exit(f"error: pip download of {PACKAGE} left no {SDIST} in {CACHE}")
    if sha256_of(path) != SDIST_SHA256:
        os.unlink(path)
        sys.exit(f"error: {SDIST}: sha256 differs from the pinned one; removed")
    return path


def main():
    if os.path.isfile(os.path.join(OUT_DIR, STAMP)):
        print(f"ok       {os.path.relpath(OUT_DIR, ROOT)} (already complete)")
        return
    archive = sdist()
    parent = os.path.dirname(OUT_DIR)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".partial-llama-tests-")
    try:
        counts = {folder: 0 for _, folder in WANTED}
        for folder in counts:
            os.mkdir(os.path.join(tmp, folder))
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                name = m.name[len(MEMBER_DIR):] if m.name.startswith(MEMBER_DIR) else ""
                for prefix, folder in WANTED:
                    # Only plain files one level down, named as llama.cpp names them: nothing
                    # from the archive picks its own path here.
                    rest = name[len(prefix):] if name.startswith(prefix) else ""
                    if prefix.endswith("/"):
                        base = rest
                    else:
                        base = name if rest else ""
                    if not (m.isfile() and base and "/" not in base and not base.startswith(".")):
                        continue
                    with open(os.path.join(tmp, folder, base), "wb") as out:
                        shutil.copyfileobj(tar.extractfile(m), out)
                    counts[folder] += 1
        empty = [f for f, n in counts.items() if n == 0]
        if empty:
            sys.exit(f"error: {SDIST} holds nothing for {', '.join(empty)}")
        n = sum(counts.values())
        open(os.path.join(tmp, STAMP), "w").close()
        if os.path.isdir(OUT_DIR):
            shutil.rmtree(OUT_DIR)
        os.replace(tmp, OUT_DIR)
        print(f"fetched  {n} of llama.cpp's test files -> {os.path.relpath(OUT_DIR, ROOT)}")
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
