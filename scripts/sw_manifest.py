#!/usr/bin/env python3
"""Fills dist/sw.js with the list of files that make up the app shell and a version derived
from their contents, so a new build replaces the old shell and an unchanged one is kept."""

import hashlib
import json
import os
import sys


def main(dist):
    files = []
    for root, _, names in os.walk(dist):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), dist).replace(os.sep, "/")
            if rel == "sw.js" or rel.endswith(".gguf") or rel.startswith("assets/models/.partial"):
                continue
            files.append(rel)
    files.sort()
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        with open(os.path.join(dist, f), "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    version = h.hexdigest()[:16]
    shell = ["./"] + ["./" + f for f in files]
    path = os.path.join(dist, "sw.js")
    text = open(path, encoding="utf-8").read()
    text = text.replace("'__TINYLAB_VERSION__'", json.dumps(version))
    text = text.replace("__TINYLAB_SHELL__", json.dumps(shell))
    open(path, "w", encoding="utf-8").write(text)
    print(f"service worker: {len(shell)} shell files, version {version}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist")
