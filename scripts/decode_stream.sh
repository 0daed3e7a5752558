#!/usr/bin/env bash
# How fast the engine's decoding kernels read one weight matrix in V8 (node), in both wasm
# builds: rows per pass (with and without touching ahead) against one row in order. Prints ms
# a pass and GB/s per case (scripts/decode_stream/run.mjs). Not part of the tests; the figures
# in docs/BENCHMARKS.md's seventh-stop section came from it.
set -euo pipefail
cd "$(dirname "$0")/decode_stream"
TARGET="${TINYLAB_CACHE:-$HOME/.cache/tinylab}/target-decode-stream"
for form in simd128 relaxed; do
  flags="+simd128"
  [ "$form" = relaxed ] && flags="+simd128,+relaxed-simd"
  RUSTFLAGS="-C target-feature=$flags" CARGO_TARGET_DIR="$TARGET/$form" \
    cargo build --quiet --release --target wasm32-unknown-unknown
  node --experimental-wasm-relaxed-simd run.mjs \
    "$TARGET/$form/wasm32-unknown-unknown/release/decode_stream.wasm" "$form"
done
