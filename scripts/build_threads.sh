#!/usr/bin/env bash
# Builds the shared-memory model worker (run by build_web.sh after Trunk):
#   build_threads.sh          simd128 into dist/threads/
#   build_threads.sh relaxed  simd128 + relaxed SIMD into dist/threads-relaxed/
# Threads in wasm need std compiled with atomics, so this binary is built with the pinned
# nightly and `-Z build-std`; the page uses it only where it is cross-origin isolated and
# falls back to a single-threaded worker elsewhere (src/app/threads.rs), and uses the relaxed
# form only where the browser validates relaxed SIMD.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${TINYLAB_CACHE:-$HOME/.cache/tinylab}"
NIGHTLY=$(cat "$CACHE/nightly-toolchain" 2>/dev/null || true)
if [ -z "$NIGHTLY" ]; then
  bash scripts/setup.sh
  NIGHTLY=$(cat "$CACHE/nightly-toolchain")
fi
case "${1:-plain}" in
  plain) FEATURES="+simd128"; OUT=dist/threads; TARGET_DIR="$CACHE/target-threads" ;;
  relaxed) FEATURES="+simd128,+relaxed-simd"; OUT=dist/threads-relaxed; TARGET_DIR="$CACHE/target-threads-relaxed" ;;
  *) echo "usage: build_threads.sh [plain|relaxed]" >&2; exit 2 ;;
esac
# Each form its own target directory: other RUSTFLAGS would otherwise rebuild everything.
# 4 GiB is wasm32's ceiling; shared memory must declare one, and Qwen2.5 needs over 1 GiB.
# The linker must be told to share memory and export the TLS symbols wasm-bindgen's thread
# support looks for; atomics alone do not make it do so.
LINK='-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296'
for sym in __wasm_init_tls __tls_size __tls_align __tls_base; do LINK="$LINK -C link-arg=--export=$sym"; done
RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,$FEATURES $LINK" \
  CARGO_TARGET_DIR="$TARGET_DIR" \
  cargo "+$NIGHTLY" build --release --target wasm32-unknown-unknown --bin tinylab_worker \
  -Z build-std=std,panic_abort
mkdir -p "$OUT"
wasm-bindgen --target no-modules --no-typescript --out-dir "$OUT" \
  "$TARGET_DIR/wasm32-unknown-unknown/release/tinylab_worker.wasm"
cp www/threads/tinylab_helper.js www/threads/tinylab_worker_loader.js "$OUT/"
echo "threaded worker ($FEATURES): $(du -h "$OUT/tinylab_worker_bg.wasm" | cut -f1) in $OUT/"
