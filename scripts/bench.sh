#!/usr/bin/env bash
# The benchmark, all engines in one run on this machine, one thread each, for every catalog
# model that is present: TinyLab native (CLI `bench`), llama.cpp native (llama-cpp-python,
# built into ~/.cache/tinylab/llama-venv by scripts/llama_fixtures.py), TinyLab's page worker
# and @wllama/wllama in the same headless Chromium. Prints one table with ratios and writes
# docs/bench-native.json, docs/bench.json and docs/bench-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"
export RAYON_NUM_THREADS=1

bash scripts/setup.sh
python3 scripts/llama_fixtures.py --venv-only
bash scripts/build_web.sh
want=$(sed -n 's/.*"@wllama\/wllama": "\(.*\)".*/\1/p' tests/bench/package.json)
have=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' tests/bench/node_modules/@wllama/wllama/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  (cd tests/bench && npm ci --no-audit --no-fund)
fi
python3 scripts/bench_native.py --threads 1
node tests/bench/run.mjs
