"""Shared fixtures: tiny models built once per test run, generated media, and a helper to run swift."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tiny_models


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL, built once per test run."""
    return tiny_models.build("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "qwen2_5_vl")
