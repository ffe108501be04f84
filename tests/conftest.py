"""Shared fixtures: tiny models built once per test run, generated media, and a helper to run swift."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import tiny_models


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL, built once per test run."""
    return tiny_models.build("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_videollama3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random VideoLLaMA3 (native transformers format; ms-swift plugin recipes/plugins/videollama3.py)."""
    return tiny_models.build("videollama3", tmp_path_factory.mktemp("tiny") / "videollama3")


@pytest.fixture(scope="session")
def tiny_llava1_5_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaVA-1.5 in llava-hf format (ms-swift model type and template `llava1_5_hf`)."""
    return tiny_models.build("llava1_5_hf", tmp_path_factory.mktemp("tiny") / "llava1_5_hf")


# --- the e2e marker ------------------------------------------------------------------------------------------------
# `pytest -m "not e2e"` is the fast lane. A test that starts swift, torchrun, DeepSpeed, Chromium or the demo must be
# marked `e2e`; this guard fails an unmarked test that starts one directly (tests/README.md).
_E2E_PROGRAMS = frozenset({"swift", "torchrun", "deepspeed", "chromium", "chromium-browser", "demo.py"})


def _e2e_program(args: object) -> str | None:
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args or [])  # type: ignore[arg-type]
    for arg in argv:
        words = os.fsdecode(arg).split() if isinstance(arg, (str, bytes)) else [os.fsdecode(arg)]
        for word in words:
            name = os.path.basename(word)
            if name in _E2E_PROGRAMS:
                return name
    return None


@pytest.fixture(autouse=True)
def _e2e_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("e2e") is not None:
        return
    original = subprocess.Popen.__init__

    def guarded(self, args, *a, **kw):  # noqa: ANN001
        program = _e2e_program(args)
        if program is not None:
            raise AssertionError(f"{request.node.nodeid} starts {program}: mark it @pytest.mark.e2e")
        original(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
