#!/usr/bin/env bash
# End-to-end tests of the page in headless Chromium: installs Debian's chromium and
# playwright-core (npm) when missing, builds the release page and the native CLI (the reference
# the page is compared with), then drives the page. Screenshots land in tests/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tinylab/target}"

bash scripts/prereqs.sh chromium
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/e2e/package.json)
have=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' tests/e2e/node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

bash scripts/setup.sh
python3 scripts/tiny_fixtures.py --models-only   # tests/e2e/archs.test.mjs drops them on a pane
bash scripts/build_web.sh
cargo build --release --bin tinylab
cd tests/e2e && node --test --test-concurrency=1 .
