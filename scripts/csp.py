#!/usr/bin/env python3
"""Put a Content-Security-Policy into the built dist/index.html.

Trunk starts the app with an inline module script, so the policy allows exactly that script by
its sha256 and nothing else inline. Everything else must come from the page's own origin;
'wasm-unsafe-eval' is what compiling WebAssembly needs. Run after every `trunk build`
(scripts/build_web.sh does).
"""

import base64
import hashlib
import re
import sys

POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {hashes}; "
    "worker-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'"
)


def main(path):
    html = open(path, encoding="utf-8").read()
    html = re.sub(r'\s*<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    scripts = re.findall(r"<script(?:\s[^>]*)?>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(
        "'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
        for s in scripts
        if s.strip()
    )
    meta = '<meta http-equiv="Content-Security-Policy" content="%s" />' % POLICY.format(hashes=hashes)
    html, n = re.subn(r'(<meta charset="utf-8" />)', r"\1\n    " + meta.replace("\\", "\\\\"), html, count=1)
    if n != 1:
        sys.exit(f"{path}: no <meta charset> to put the policy after")
    open(path, "w", encoding="utf-8").write(html)
    print(f"CSP written to {path} ({len(scripts)} inline script(s) allowed by hash)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist/index.html")
