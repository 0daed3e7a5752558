#!/usr/bin/env bash
# Builds a self-contained folder for a demo at an event: the app, the chosen models, and a
# one-file server. Copy it to a laptop or a USB stick; there, with no network:
#   python3 serve.py        (then open http://127.0.0.1:8080/?demo=1)
# Any other static server works too (the page only needs its own folder).
#
# Usage: bash scripts/demo_bundle.sh OUT_DIR [--all | MODEL_ID ...]   (default: SmolLM2 only)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: demo_bundle.sh OUT_DIR [--all | MODEL_ID ...]}"
shift
# The folder is emptied first; only one that is empty or an earlier bundle (its marker file),
# never a folder of something else named by mistake.
MARK=.tinylab-demo-bundle
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/$MARK" ]; then
  echo "error: $out is not empty and is not an earlier TinyLab bundle; name a new or empty folder" \
    "(a bundle made before this check has no $MARK: empty it by hand first)" >&2
  exit 2
fi
bash scripts/prereqs.sh
bash scripts/setup.sh
python3 scripts/fetch_models.py "$@"
bash scripts/build_web.sh

mkdir -p "$out"
rm -rf "${out:?}/"*
touch "$out/$MARK"
cp -r dist/. "$out/"
mkdir -p "$out/assets/models"
# The models the fetch step verified: the default, the named ones, or all.
python3 - "$out" "$@" <<'PY'
import json, os, shutil, sys
out, args = sys.argv[1], sys.argv[2:]
cat = json.load(open("assets/models/catalog.json"))
ids = [m["id"] for m in cat["models"]] if "--all" in args else (args or [cat["default"]])
for m in cat["models"]:
    if m["id"] in ids:
        shutil.copy2(os.path.join("assets/models", m["file"]), os.path.join(out, "assets/models", m["file"]))
        print("bundled", m["id"])
PY
cp scripts/serve.py "$out/serve.py"
cat > "$out/README.txt" <<'TXT'
TinyLab, ready to run with no network.

  python3 serve.py                 then open http://127.0.0.1:8080/?demo=1
  python3 serve.py --port 9000     another port

Any static file server that serves this folder works as well. Everything runs in the browser.
TXT
du -sh "$out"
