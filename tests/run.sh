#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first; idempotent). Extra arguments go to pytest:
#   bash tests/run.sh                 # everything, ~30 min on 2 idle CPU cores (907 tests)
#   bash tests/run.sh -m "not e2e"    # the fast lane, ~1.5 min: no swift, torchrun, DeepSpeed, Chromium (tests/README.md),
#                                     # on two pytest-xdist workers (-n 2) unless -n is given
#   bash tests/run.sh tests/eval -x   # one layer
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/setup_chromium.sh"  # headless Chromium for tests/eval/test_report.py
cd "$ROOT"
args=("$@")
if [[ " $* " == *"not e2e"* && " $* " != *" -n "* && " $* " != *" -n="* ]]; then
  args=(-n 2 "${args[@]}")  # the fast lane's tests are independent: both cores (pytest-xdist)
fi
exec "$ROOT/.venv/bin/python" -m pytest "${args[@]}"
