#!/usr/bin/env bash
# Builds the single-threaded model worker with relaxed SIMD into dist/relaxed/ (run by
# build_web.sh after Trunk, whose own worker is the simd128 form). The page picks it where the
# browser validates relaxed SIMD and the page is not cross-origin isolated (src/app/threads.rs).
# Stable Rust; its own target directory, since other RUSTFLAGS would rebuild everything.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TINYLAB_CACHE:-$HOME/.cache/tinylab}"
TARGET_DIR="$CACHE/target-relaxed"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$TARGET_DIR" \
  cargo build --release --target wasm32-unknown-unknown --bin tinylab_worker
mkdir -p dist/relaxed
wasm-bindgen --target no-modules --no-typescript --out-dir dist/relaxed \
  "$TARGET_DIR/wasm32-unknown-unknown/release/tinylab_worker.wasm"
cp www/threads/tinylab_worker_loader.js dist/relaxed/
echo "relaxed-SIMD worker: $(du -h dist/relaxed/tinylab_worker_bg.wasm | cut -f1) in dist/relaxed/"
