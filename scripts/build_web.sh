#!/usr/bin/env bash
# Builds the page into dist/ (release, simd128) and adds its Content-Security-Policy.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"
trunk build --release
python3 scripts/csp.py dist/index.html
