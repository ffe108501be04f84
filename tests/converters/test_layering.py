"""The converters render with prompts/ and stand on common/: none of them imports anything from eval/ (answer formats
live in prompts/, the prediction/reference join in common/join.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONVERTERS = sorted(p.stem for p in (ROOT / "converters").glob("*.py") if p.stem != "__init__")


def test_no_converter_imports_eval() -> None:
    code = ("import importlib, sys\n"
            f"for name in {CONVERTERS!r}:\n"
            "    importlib.import_module('converters.' + name)\n"
            "print(sorted(m for m in sys.modules if m == 'eval' or m.startswith('eval.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(CONVERTERS) >= 6 and proc.stdout.strip() == "[]"
