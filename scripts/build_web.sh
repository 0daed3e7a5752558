#!/usr/bin/env bash
# Builds the page into dist/ (release, simd128; the model worker also with threads, with relaxed
# SIMD, and with both), adds its Content-Security-Policy and fills the
# service worker's list of app-shell files.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"
# Trunk.toml's `offline` makes Trunk run `cargo build --offline`, so the crates must be in
# Cargo's cache first (a fresh machine has none); and Trunk's own update check asks crates.io's
# API at every build unless told not to.
cargo fetch --locked
export TRUNK_SKIP_VERSION_CHECK=true
trunk build --release
bash scripts/build_threads.sh
bash scripts/build_relaxed.sh
bash scripts/build_threads.sh relaxed
python3 scripts/csp.py dist/index.html
python3 scripts/sw_manifest.py dist
