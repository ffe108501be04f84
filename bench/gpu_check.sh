#!/usr/bin/env bash
# One command on a GPU machine (one H100/H200, at most 10 minutes, no downloads): memory and speed of the video
# recipes at their real 7B size with random weights -> OUT/gpu_check.json (bench/gpu_check.py, bench/README.md).
# Needs: bench/gpu/ prepared on a CPU box first (`python bench/gpu_check.py prepare`: manifest, clips, wheels) and
# carried to the GPU machine; python3 with torch (CUDA), transformers and peft (the device image has them).
#
#   bash bench/gpu_check.sh                    # OUT=outputs/gpu_check
#   OUT=$OUT DEADLINE=420 bash bench/gpu_check.sh
# What cannot travel (vLLM, flash-attn: too large; DeepSpeed's compiled ops) is reported as not measured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/outputs/gpu_check}"
DEADLINE="${DEADLINE:-480}"       # seconds of measuring; the rest of the 10 minutes is start-up and installs
PYTHON="${PYTHON:-python3}"
SITE="${SITE:-/tmp/gpu_check_site}"
mkdir -p "$OUT"
[[ -f "$ROOT/bench/gpu/manifest.json" ]] || { echo "gpu_check.sh: error: bench/gpu/manifest.json not found: run \`python bench/gpu_check.py prepare\` on a CPU box and carry bench/gpu (bench/README.md)" >&2; exit 2; }

# The prepared wheels (ms-swift and what it needs beyond the image), into a private site directory: never over the
# image's own packages. A failed install is reported and the plain-PyTorch measurements still run.
if compgen -G "$ROOT/bench/gpu/wheels/*.whl" >/dev/null; then
    if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$ROOT"/bench/gpu/wheels/*.whl > "$OUT/wheels.log" 2>&1; then
        export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
        echo "gpu_check.sh: wheels installed into $SITE"
    else
        echo "gpu_check.sh: wheel install failed (see $OUT/wheels.log); measuring without them" >&2
    fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1 || true
PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 "$PYTHON" "$ROOT/bench/gpu_check.py" run --out "$OUT" --deadline "$DEADLINE" "$@"
