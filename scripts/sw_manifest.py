#!/usr/bin/env python3
"""Stamps a build of the page with its deploy's identity.

- The version: a hash of every app-shell file's contents (the stamps themselves left out, so
  stamping again gives the same version), so a new build replaces the old shell and an
  unchanged one is kept.
- dist/sw.js gets the version and the list of shell files.
- index.html gets `<meta name="tinylab-build">`, and the model worker's loaders and helper get
  `self.TINYLAB_BUILD`: the page asks for the worker and the catalog with `?build=`, the service
  worker answers a request for another build from the network, and the worker reports its
  build in `Ready`, so after a deploy page and worker always come from the same build.

Running it again on a stamped folder (after changing a file) re-stamps it.
"""

import hashlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADER_TEMPLATE = os.path.join(ROOT, "www", "threads", "tinylab_worker_loader.js")
STAMPED_JS = ["tinylab_worker_loader.js", "threads/tinylab_worker_loader.js", "threads/tinylab_helper.js",
              "relaxed/tinylab_worker_loader.js", "threads-relaxed/tinylab_worker_loader.js",
              "threads-relaxed/tinylab_helper.js"]
JS_STAMP = re.compile(r"^self\.TINYLAB_BUILD = .*;$", re.M)
JS_UNSTAMPED = "self.TINYLAB_BUILD = self.TINYLAB_BUILD || '';"
META = re.compile(r'\s*<meta name="tinylab-build" content="[^"]*" />')


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def unstamped(rel, data):
    """The file's bytes without this script's stamps, for the version hash."""
    if rel in STAMPED_JS:
        return JS_STAMP.sub(JS_UNSTAMPED, data.decode("utf-8")).encode("utf-8")
    if rel == "index.html":
        return META.sub("", data.decode("utf-8")).encode("utf-8")
    return data


def main(dist):
    # Trunk's own loader shim knows no build: use ours, which passes `?build=` on.
    shim = os.path.join(dist, "tinylab_worker_loader.js")
    if os.path.exists(shim) and "TINYLAB_BUILD" not in read(shim):
        write(shim, read(LOADER_TEMPLATE))
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
            h.update(hashlib.sha256(unstamped(f, fh.read())).digest())
    version = h.hexdigest()[:16]
    shell = ["./"] + ["./" + f for f in files]

    path = os.path.join(dist, "sw.js")
    text = read(path)
    text = re.sub(r"^const VERSION = .*;$", "const VERSION = " + json.dumps(version) + ";", text, flags=re.M)
    text = re.sub(r"^const SHELL = .*;$", "const SHELL = " + json.dumps(shell) + ";", text, flags=re.M)
    write(path, text)

    for rel in STAMPED_JS:
        p = os.path.join(dist, rel)
        if os.path.exists(p):
            text = read(p)
            if not JS_STAMP.search(text):
                sys.exit(f"{rel} has no `self.TINYLAB_BUILD = ...;` line to stamp")
            write(p, JS_STAMP.sub(f"self.TINYLAB_BUILD = {json.dumps(version)};", text, count=1))

    index = os.path.join(dist, "index.html")
    text = META.sub("", read(index))
    text = text.replace("</head>", f'  <meta name="tinylab-build" content="{version}" />\n  </head>', 1)
    write(index, text)
    print(f"service worker: {len(shell)} shell files, version {version}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist")
