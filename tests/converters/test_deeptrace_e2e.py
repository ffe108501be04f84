"""Converter output is real ms-swift input: convert the bundled sample, then `swift sft` 2 steps on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.jsonl import read_jsonl
from common.swift import CPU_TRAIN_FLAGS, run_swift
from converters.labelbox_to_swift import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "deeptrace"


@pytest.mark.e2e
def test_convert_then_swift_sft_two_steps(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert main([str(SAMPLES / "export_v2.ndjson"), "--media-root", str(SAMPLES / "videos"),
                 "--real-videos", str(SAMPLES / "real"), "--out", str(data), "--variant", "all", "-q"]) == 0
    rows = read_jsonl(data / "no_time" / "train.jsonl")
    assert len(rows) == 7 and all("meta" in r for r in rows)  # meta rides along; sft must tolerate it
    out = tmp_path / "sft"
    full = data / "full"
    run_swift("sft", ["--model", str(tiny_qwen2_5_vl), "--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl",
                      "--dataset", str(full / "train.jsonl"), "--val_dataset", str(full / "val.jsonl"),
                      "--output_dir", str(out), "--tuner_type", "lora", "--max_steps", "2", "--save_steps", "2",
                      "--eval_steps", "2", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1",
                      "--learning_rate", "1e-3", "--max_length", "1024", *CPU_TRAIN_FLAGS],
              log=tmp_path / "sft.log")
    assert (out / "checkpoint-2").is_dir(), sorted(p.name for p in out.iterdir())
