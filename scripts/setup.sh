#!/usr/bin/env bash
# Creates (or checks) the project's virtual environment in .venv: torch first, then requirements.txt with torch
# pinned, then DeepSpeed without build isolation. Used by the README, the tests and .ci/run.
#
#   bash scripts/setup.sh            # idempotent: a second run is a no-op in about a second
#   SETUP_DEVICE=cpu|gpu|auto        # auto (default): gpu when `nvidia-smi -L` lists a GPU
#   VENV=/path/to/venv PYTHON=python3.11 SETUP_FORCE=1
#   SETUP_EXTRAS=gpu                 # opt-in, GPU machines only: then requirements-gpu.txt (vLLM, liger-kernel,
#                                    # flash-attn) with requirements.txt as constraints; refused on a CPU-only box
#
# CPU boxes: PyPI's only torchvision wheel is CUDA-linked and dies on import with CPU torch
# ("operator torchvision::nms does not exist"); on CPU this script guards those registrations so the pure-torch
# transforms work. GPU boxes get the normal CUDA stack, unpatched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
REQ="$ROOT/requirements.txt"
STAMP="$VENV/.setup-stamp"

fail() { echo "setup: FAILED at step '$1' (exit $2). Fix the cause above and re-run: bash scripts/setup.sh" >&2; exit "$2"; }
step() {  # step NAME CMD... : runs CMD, names the step if it fails
  local name="$1"; shift
  echo "setup: [$name]"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name" "$rc"
  echo "setup: [$name] done in $((SECONDS - t0)) s"
}

device="${SETUP_DEVICE:-auto}"
if [ "$device" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then device=gpu; else device=cpu; fi
fi
case "$device" in cpu|gpu) ;; *) echo "setup: SETUP_DEVICE must be cpu, gpu or auto, got '$device'" >&2; exit 2;; esac
extras="${SETUP_EXTRAS:-}"
case "$extras" in
  "") ;;
  gpu) if [ "$device" != gpu ] || ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
         echo "setup: SETUP_EXTRAS=gpu needs a GPU machine (nvidia-smi lists no GPU here): nothing was changed" >&2
         exit 2
       fi ;;
  *) echo "setup: SETUP_EXTRAS must be empty or gpu, got '$extras'" >&2; exit 2;;
esac

pin() {  # pin NAME -> the version requirements.txt pins for NAME
  sed -n "s/^$1==\([^ ]*\).*/\1/p" "$REQ" | head -n 1
}
TORCH_VERSION="$(pin torch)"; TV_VERSION="$(pin torchvision)"; DS_VERSION="$(pin deepspeed)"
[ -n "$TORCH_VERSION" ] && [ -n "$TV_VERSION" ] && [ -n "$DS_VERSION" ] \
  || { echo "setup: $REQ must pin torch, torchvision and deepspeed with ==" >&2; exit 2; }

command -v "$PYTHON" >/dev/null 2>&1 || { echo "setup: FAILED at step 'find Python': '$PYTHON' not found (set PYTHON=python3.11)" >&2; exit 2; }
fingerprint="$(cat "$REQ" "$0" | sha256sum | cut -c1-16)-$device-$("$PYTHON" -c 'import sys;print(sys.version.split()[0])')"
install_extras() {  # the opt-in GPU extras, with the pinned stack as constraints
  local gpu_req="$ROOT/requirements-gpu.txt"
  step "install requirements-gpu.txt (vllm, liger-kernel; requirements.txt as constraints)" \
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$REQ" -r <(grep -v -E '^flash-attn==' "$gpu_req")
  step "build and install flash-attn (no build isolation; compiles against torch $TORCH_VERSION)" \
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$REQ" --no-build-isolation \
    "$(grep -E '^flash-attn==' "$gpu_req" | cut -d' ' -f1)"
  step "check GPU extras" "$VENV/bin/python" -c \
    'import torch, vllm, liger_kernel, flash_attn; print(f"setup: vllm {vllm.__version__}, flash-attn {flash_attn.__version__}, torch {torch.__version__}")'
}
if [ -z "${SETUP_FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] \
   && "$VENV/bin/python" -c 'import swift, torchvision, deepspeed' >/dev/null 2>&1; then
  echo "setup: $VENV is up to date ($device)."
  if [ "$extras" = gpu ]; then install_extras; fi
  exit 0
fi

PIP=(pip_install)
pip_install() {  # pip install, minus the noise of this machine's unused local index mirrors
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }  # with pipefail, the status is pip's
}
CONSTRAINTS="$(mktemp)"; trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

[ -x "$VENV/bin/python" ] || step "create venv ($PYTHON -m venv $VENV)" "$PYTHON" -m venv "$VENV"
step "upgrade pip, setuptools, wheel" "${PIP[@]}" -q -U pip "setuptools<81" wheel
step "install torch==$TORCH_VERSION ($device)" "${PIP[@]}" -q "torch==$TORCH_VERSION"
step "install requirements.txt (torch pinned)" \
  "${PIP[@]}" -q -c "$CONSTRAINTS" -r <(grep -v -E '^(deepspeed)==' "$REQ")

patch_torchvision() {
  local tv
  tv="$("$VENV/bin/python" -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("torchvision").origin))')"
  sed -i 's/^@torch.library.register_fake("torchvision::\([a-z_]*\)")$/@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))/' \
    "$tv/_meta_registrations.py"
}
if [ "$device" = cpu ]; then
  step "make torchvision importable on CPU torch" patch_torchvision
fi
export DS_BUILD_OPS=0  # no CUDA ops are prebuilt; DeepSpeed JIT-builds what it needs
step "install deepspeed==$DS_VERSION (no build isolation)" \
  "${PIP[@]}" -q -c "$CONSTRAINTS" --no-build-isolation "deepspeed==$DS_VERSION"
step "check imports" "$VENV/bin/python" - <<'PY'
import torch, torchvision, transformers, swift, deepspeed, decord, av, qwen_vl_utils  # noqa: F401
from transformers import AutoProcessor  # noqa: F401
from torchvision.transforms.v2 import functional  # noqa: F401
print(f"setup: torch {torch.__version__} (cuda {torch.cuda.is_available()}), torchvision {torchvision.__version__}, "
      f"transformers {transformers.__version__}, ms-swift {swift.__version__}, deepspeed {deepspeed.__version__}")
PY
echo "$fingerprint" > "$STAMP"
if [ "$extras" = gpu ]; then install_extras; fi
echo "setup: ready. Activate with: source $VENV/bin/activate"
