#!/usr/bin/env bash
# What the other scripts take for granted, installed only when missing: Python's pip and venv
# (Debian's system python3 ships without them: `pip download` fetches the models, small venvs
# hold gguf-py and llama-cpp-python) and rustup's rustfmt and clippy (a minimal profile lacks
# them). `prereqs.sh chromium` also installs Debian's chromium and chromium-driver (the browser
# tests). Non-interactive: apt-get through `sudo -n` when not root, so a missing password fails
# at once instead of waiting for a prompt nobody answers.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    env DEBIAN_FRONTEND=noninteractive "$@"
  else
    sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
  fi
}
apt_install() {
  as_root apt-get install -y "$@" || { as_root apt-get update && as_root apt-get install -y "$@"; }
}

# `ensurepip` is what `python3 -m venv` uses to put pip in a new venv; Debian moves it to
# python3-venv.
if ! python3 -m pip --version >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "installing python3-pip and python3-venv"
  apt_install python3-pip python3-venv
fi

# The list read whole first: `grep -q` ending a pipe early fails it under pipefail.
installed=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
  if ! grep -q "^$component" <<<"$installed"; then
    rustup component add "$component"
  fi
done

if [ "${1:-}" = "chromium" ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium chromium-driver
fi
