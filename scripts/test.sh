#!/usr/bin/env bash
# Runs every test: formatting, clippy (native and wasm32), unit and integration tests on the real
# models (fetched here when missing), then the page end to end in headless Chromium.
# Idempotent and non-interactive; CI calls it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside the clone, so a fresh clone on the same machine starts warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "prerequisites (pip, venv, rustfmt, clippy; installed only when missing)"
bash scripts/prereqs.sh

step "models (verified by sha256; downloaded only when missing)"
python3 scripts/fetch_models.py --all

step "llama.cpp's own tokenizer test files and chat templates (from the pinned llama-cpp-python source package; downloaded only when missing)"
python3 scripts/fetch_llama_tests.py

step "tiny models of every architecture (written, not committed; checked against their llama.cpp fixtures)"
python3 scripts/tiny_fixtures.py --models-only

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --release --all-targets -- -D warnings

step "tests (unit, tiny models, llama.cpp parity, CLI)"
cargo test --release

step "tools for the page (wasm32 target, trunk, wasm-bindgen-cli, pinned nightly + rust-src; installed only when missing)"
bash scripts/setup.sh

step "clippy for wasm32 (the page and its worker)"
cargo clippy --release --target wasm32-unknown-unknown --lib --bins -- -D warnings
# The relaxed-SIMD kernels compile only in that build (scripts/build_relaxed.sh's target dir).
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  CARGO_TARGET_DIR="${TINYLAB_CACHE:-$HOME/.cache/tinylab}/target-relaxed" \
  cargo clippy --release --target wasm32-unknown-unknown --lib --bins -- -D warnings

step "the page in headless Chromium"
bash scripts/e2e.sh
