#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first; idempotent). Extra arguments go to pytest:
#   bash tests/run.sh                 # everything: 384 tests, ~14 min on 2 idle CPU cores
#   bash tests/run.sh -k spine -x     # a subset
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/setup_chromium.sh"  # headless Chromium for tests/test_report.py
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
