#!/usr/bin/env bash
# Installs headless Chromium (the Debian package `chromium`), which the report tests (tests/eval/test_report.py) open
# eval/report.py's HTML in. Idempotent: a no-op when `chromium` is already on PATH. Called by tests/run.sh and .ci/run.
#
#   bash scripts/setup_chromium.sh
#
# Installing needs apt-get and root (or passwordless sudo); otherwise it stops with the command to run.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "setup_chromium: $(chromium --version 2>/dev/null | head -n 1) is installed."
  exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "setup_chromium: chromium is missing and installing it needs root: sudo apt-get install chromium" >&2
    exit 2
  fi
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "setup_chromium: chromium is missing and there is no apt-get; install Chromium so that 'chromium' is on PATH" >&2
  exit 2
}
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
echo "setup_chromium: [apt-get install chromium]"
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium; } \
    >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "setup_chromium: FAILED installing chromium with apt-get (output above)" >&2
  exit 2
fi
command -v chromium >/dev/null 2>&1 || { echo "setup_chromium: installed, but 'chromium' is not on PATH" >&2; exit 2; }
echo "setup_chromium: $(chromium --version 2>/dev/null | head -n 1) installed in $((SECONDS - t0)) s."
