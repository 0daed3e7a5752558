#!/usr/bin/env bash
# How fast the engine's decoding kernels (one weight row read front to back, `dot_in_order`)
# read one weight matrix in V8 (node), in both wasm builds, from memory and in cache. Prints ms
# a pass and GB/s per case (scripts/decode_stream/run.mjs; CASES=q8:rows:k,… picks cases;
# IN=chromium runs them in headless Chromium, the browser whose figures count).
# Not part of the tests; docs/BENCHMARKS.md's kernel figures came from it.
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
