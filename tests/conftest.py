"""Shared fixtures: tiny models built once per test run, generated media, and a helper to run swift."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tiny_models


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
