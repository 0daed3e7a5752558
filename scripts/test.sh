#!/usr/bin/env bash
# Runs every test: formatting, clippy, unit and integration tests on the real models
# (fetched here when missing), and a wasm32 build check of the engine.
# Idempotent and non-interactive; CI calls it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside the clone, so a fresh clone on the same machine starts warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "models (verified by sha256; downloaded only when missing)"
python3 scripts/fetch_models.py --all

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --release --all-targets -- -D warnings

step "tests (unit, tiny models, llama.cpp parity, CLI)"
cargo test --release

step "engine builds for wasm32 with simd128"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

cargo check --release --lib --target wasm32-unknown-unknown
