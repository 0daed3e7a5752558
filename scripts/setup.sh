#!/usr/bin/env bash
# Installs what building the page needs, each only when missing at the pinned version:
# the wasm32 target, trunk, and wasm-bindgen-cli at exactly the wasm-bindgen crate's version.
# Nothing is downloaded except from the Rust registries.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
# The CLI must equal the crate, which Cargo.toml pins with `=`; read it from there.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
# Trunk checks the CLI against Trunk.toml's [tools] pin; the two must not drift apart.
TRUNK_PIN=$(sed -n 's/^wasm_bindgen = "\(.*\)"/\1/p' Trunk.toml)
if [ "$TRUNK_PIN" != "$WASM_BINDGEN_VERSION" ]; then
  echo "error: Trunk.toml pins wasm_bindgen $TRUNK_PIN but Cargo.toml has wasm-bindgen $WASM_BINDGEN_VERSION" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  echo "installing trunk $TRUNK_VERSION (about 10 minutes on 2 cores)"
  cargo install "trunk@$TRUNK_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes)"
  # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves. So
  # its dependencies resolve anew: take releases this rustc can build.
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
    cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi

# The shared-memory (threaded) model worker needs std rebuilt with atomics, which only a
# nightly toolchain can do (`-Z build-std`). Pinned; `nightly` is reused when it is that build.
NIGHTLY_DATE=2026-05-19
nightly_toolchain() {
  if rustc "+nightly-$NIGHTLY_DATE" -V >/dev/null 2>&1; then
    echo "nightly-$NIGHTLY_DATE"
  elif rustc +nightly -V 2>/dev/null | grep -q " $NIGHTLY_DATE)"; then
    echo nightly
  fi
}
NIGHTLY=$(nightly_toolchain)
if [ -z "$NIGHTLY" ]; then
  echo "installing Rust nightly-$NIGHTLY_DATE with rust-src (for the threaded worker)"
  rustup toolchain install "nightly-$NIGHTLY_DATE" --profile minimal --component rust-src
  NIGHTLY="nightly-$NIGHTLY_DATE"
fi
if ! rustup component list --installed --toolchain "$NIGHTLY" | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain "$NIGHTLY"
fi
mkdir -p "${TINYLAB_CACHE:-$HOME/.cache/tinylab}"
echo "$NIGHTLY" > "${TINYLAB_CACHE:-$HOME/.cache/tinylab}/nightly-toolchain"
