#!/usr/bin/env bash
# The README's main job: the whole DeeptraceReward pipeline (convert → train with the headline recipe → infer →
# score) on the bundled sample data with a tiny model built locally. Needs: a CPU, ~4 GB RAM, a few minutes.
# Sets up .venv first (idempotent). Options go to recipes/demo.py (--help lists them), e.g.:
#   bash recipes/demo.sh --steps 100 --out /tmp/demo
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/recipes/demo.py" "$@"
