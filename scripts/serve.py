#!/usr/bin/env python3
"""Serve the built page (dist/) on localhost.

Any static file server can serve dist/; this one adds what makes the page better:
- model files are served from the repository's assets/models/ when dist/ has no copy, so the
  fetched models are not copied into dist/ on every build;
- cross-origin isolation headers (COOP/COEP), so the page can run its threaded model worker
  (`--no-isolation` leaves them out, to see the single-thread fallback);
- correct types for .wasm and .gguf, and no caching of index.html so a rebuild shows at once;
- a Content-Security-Policy header for the workers: the page's own policy is a <meta> tag
  (scripts/csp.py), which a worker never reads, and the model worker is what parses untrusted
  GGUF files and runs their chat templates; and no framing by other sites.

Usage: python3 scripts/serve.py [--port 8080] [--host 127.0.0.1] [--dist dist] [--quiet]
"""

import argparse
import functools
import http.server
import io
import json
import os
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_PREFIX = "/assets/models/"

# For every response but the page itself; it matters for the scripts that run as workers (the
# model worker, its helper threads, the service worker), which take their policy from their
# own response. The same origin-only rules as the page's <meta> policy.
WORKER_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'"
)
# The page's own policy is in its <meta> tag with the hash of Trunk's inline script; a header
# adds what a <meta> policy cannot say.
PAGE_POLICY = "frame-ancestors 'self'"


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".json": "application/json",
        ".gguf": "application/octet-stream",
        ".webmanifest": "application/manifest+json",
    }

    def __init__(self, *args, models_dir, quiet, mounts=(), isolate=True, **kwargs):
        self.models_dir = models_dir
        self.isolate = isolate
        self.mounts = mounts
        self.quiet = quiet
        super().__init__(*args, **kwargs)

    def translate_path(self, path):
        local = super().translate_path(path)
        clean = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        for prefix, folder in self.mounts:
            if clean.startswith(prefix):
                target = os.path.normpath(os.path.join(folder, clean[len(prefix):]))
                # Nothing outside the mounted folder.
                if target == folder or target.startswith(folder + os.sep):
                    return target
                return os.path.join(folder, "__outside__")
        if clean.startswith(MODELS_PREFIX) and not os.path.exists(local):
            name = clean[len(MODELS_PREFIX):]
            # Only plain file names: no folders, so nothing outside assets/models is reachable.
            if name and "/" not in name and "\\" not in name and name not in (".", ".."):
                return os.path.join(self.models_dir, name)
        return local

    def send_head(self):
        # Hostile or odd paths (a NUL byte, control characters, a bad escape) are the client's
        # error: answer 400, never a traceback.
        raw = urllib.parse.urlsplit(self.path).path
        try:
            clean = urllib.parse.unquote(raw, errors="strict")
        except UnicodeDecodeError:
            clean = None
        if clean is None or any(ord(c) < 32 or ord(c) == 127 for c in clean):
            self.send_error(400, "bad path")
            return None
        if clean == MODELS_PREFIX + "present.json":
            return self.send_present()
        try:
            return super().send_head()
        except (ValueError, OSError):
            self.send_error(400, "bad path")
            return None

    def send_present(self):
        # Which model files this server has, in one request: the page asks this instead of
        # probing each catalog model (a missing one would log a 404 in the browser console).
        files = {}
        for folder in (os.path.join(self.directory, "assets", "models"), self.models_dir):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                if name.endswith(".gguf") and os.path.isfile(path):
                    files.setdefault(name, os.path.getsize(path))
        body = json.dumps({"files": files}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        return io.BytesIO(body)

    def list_directory(self, path):
        # No folder listings: only the files the page asks for.
        self.send_error(404, "not found")
        return None

    def end_headers(self):
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        page = getattr(self, "path", "").split("?")[0] in ("/", "/index.html")
        self.send_header("Content-Security-Policy", PAGE_POLICY if page else WORKER_POLICY)
        # An error sent before the request line was read (414 for a URL over 64 KB, 400) has
        # no path yet: it must still go out, not turn into a dropped connection.
        path = getattr(self, "path", "").split("?")[0]
        # Files without a content hash in their name must be revalidated.
        if path in ("/", "/index.html", "/sw.js") or path.startswith(("/tinylab_worker", "/threads/", "/threads-relaxed/", "/relaxed/")):
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A browser that drops a download part way (a pane removed while its model loads, a
        # Stop, a closed tab) is normal: nothing to report, and no traceback.
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    # In a demo bundle this file sits next to index.html: serve its own folder.
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.isfile(os.path.join(here, "index.html"))
    ap.add_argument("--dist", default=here if bundled else os.path.join(ROOT, "dist"))
    ap.add_argument(
        "--models",
        default=os.path.join(here, "assets", "models") if bundled else os.path.join(ROOT, "assets", "models"),
    )
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="/PREFIX/=DIR",
        help="also serve DIR under /PREFIX/ (the benchmark mounts its page and wllama)",
    )
    ap.add_argument(
        "--no-isolation",
        action="store_true",
        help="leave out COOP/COEP, as a plain static host would (the page then runs one thread)",
    )
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.dist, "index.html")):
        sys.exit(f"{a.dist}/index.html is missing: build the page first (bash scripts/build_web.sh)")
    mounts = []
    for m in a.mount:
        prefix, _, folder = m.partition("=")
        mounts.append(("/" + prefix.strip("/") + "/", os.path.abspath(folder)))
    handler = functools.partial(
        Handler,
        directory=a.dist,
        models_dir=a.models,
        quiet=a.quiet,
        mounts=tuple(mounts),
        isolate=not a.no_isolation,
    )
    server = Server((a.host, a.port), handler)
    port = server.server_address[1]
    # Tests start this with --port 0 and read the real port from this line.
    print(f"TinyLab is served at http://{a.host}:{port}/  (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
