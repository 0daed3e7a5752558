#!/usr/bin/env bash
# The one command that serves the playground: installs what is missing, fetches the default
# model, builds the page and serves it on http://127.0.0.1:${PORT:-8080}/.
# `--all-models` fetches the whole catalog first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prereqs.sh
bash scripts/setup.sh
if [ "${1:-}" = "--all-models" ]; then
  python3 scripts/fetch_models.py --all
else
  python3 scripts/fetch_models.py
fi
bash scripts/build_web.sh
exec python3 scripts/serve.py --port "${PORT:-8080}"
