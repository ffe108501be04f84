#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first; idempotent). Extra arguments go to pytest:
#   bash tests/run.sh                 # everything, ~11 min on 2 idle CPU cores
#   bash tests/run.sh -m "not e2e"    # the fast lane, ~1.5 min: no swift, torchrun, DeepSpeed, Chromium (tests/README.md)
#   bash tests/run.sh tests/eval -x   # one layer
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/setup_chromium.sh"  # headless Chromium for tests/eval/test_report.py
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
