#!/usr/bin/env bash
# Builds the shared-memory model worker into dist/threads/ (run by build_web.sh after Trunk).
# Threads in wasm need std compiled with atomics, so this one binary is built with the pinned
# nightly and `-Z build-std`; the page uses it only where it is cross-origin isolated and
# falls back to Trunk's single-threaded worker elsewhere (src/app/threads.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TINYLAB_CACHE:-$HOME/.cache/tinylab}"
NIGHTLY=$(cat "$CACHE/nightly-toolchain" 2>/dev/null || true)
if [ -z "$NIGHTLY" ]; then
  bash scripts/setup.sh
  NIGHTLY=$(cat "$CACHE/nightly-toolchain")
fi
# Its own target directory: other RUSTFLAGS would otherwise rebuild everything each time.
TARGET_DIR="$CACHE/target-threads"
# 4 GiB is wasm32's ceiling; shared memory must declare one, and Qwen2.5 needs over 1 GiB.
# The linker must be told to share memory and export the TLS symbols wasm-bindgen's thread
# support looks for; atomics alone do not make it do so.
LINK='-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296'
for sym in __wasm_init_tls __tls_size __tls_align __tls_base; do LINK="$LINK -C link-arg=--export=$sym"; done
RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 $LINK" \
  CARGO_TARGET_DIR="$TARGET_DIR" \
  cargo "+$NIGHTLY" build --release --target wasm32-unknown-unknown --bin tinylab_worker \
  -Z build-std=std,panic_abort
mkdir -p dist/threads
wasm-bindgen --target no-modules --no-typescript --out-dir dist/threads \
  "$TARGET_DIR/wasm32-unknown-unknown/release/tinylab_worker.wasm"
cp www/threads/tinylab_helper.js www/threads/tinylab_worker_loader.js dist/threads/
echo "threaded worker: $(du -h dist/threads/tinylab_worker_bg.wasm | cut -f1) in dist/threads/"
