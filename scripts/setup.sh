#!/usr/bin/env bash
# Installs what building the page needs, each only when missing at the pinned version:
# the wasm32 target, trunk, and wasm-bindgen-cli at exactly the wasm-bindgen crate's version.
# Nothing is downloaded except from the Rust registries.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
# The CLI must equal the crate, which Cargo.toml pins with `=`; read it from there.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  echo "installing trunk $TRUNK_VERSION (about 6 minutes)"
  cargo install "trunk@$TRUNK_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes)"
  # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi
