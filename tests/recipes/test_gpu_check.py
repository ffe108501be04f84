"""bench/gpu_check.py's CPU-runnable parts: the published 7B configurations, the measurement plumbing rehearsed with
tiny models on CPU (no swift), the report (MFU, projected epoch time, what was not measured), the shell entry
point's refusal, and the manifest step (real ms-swift templates on a clip of the paper's size). The slow ones carry
the e2e mark so that the fast lane stays fast."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench import gpu_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e  # not a swift run, but ~1 min of model imports: kept out of the fast lane
def test_published_configurations_have_the_published_sizes() -> None:
    qwen = gpu_check.parameter_counts("qwen2_5_vl")
    assert abs(qwen["total"] - 8.29e9) / 8.29e9 < 0.005  # Qwen2.5-VL-7B-Instruct: 8.29B parameters
    assert abs(qwen["vision"] + qwen["projector"] - 0.676e9) / 0.676e9 < 0.01  # its 675M-parameter ViT + merger
    vl3 = gpu_check.parameter_counts("videollama3")
    assert abs(vl3["llm"] - 7.62e9) / 7.62e9 < 0.005  # Qwen2.5-7B: 7.62B
    assert abs(vl3["vision"] - 0.412e9) / 0.412e9 < 0.02  # SigLIP-so400m shape, no position table (NaViT)
    assert vl3["projector"] == 1152 * 3584 + 3584 + 3584 * 3584 + 3584  # mlp2x_gelu
    tiny = gpu_check.parameter_counts("videollama3", "tiny")
    assert tiny["total"] < vl3["total"] / 100
    with pytest.raises(gpu_check.UserError, match="unknown model"):
        gpu_check.build_config("llava", "7b")


SHAPES = {  # small shapes of the manifest's form (what `prepare` writes), for a CPU rehearsal
    "qwen2_5_vl_lora": {"recipe": "qwen2_5_vl_lora", "arch": "qwen2_5_vl", "seq_len": 40, "video_tokens": 8,
                        "answer_tokens": 6, "grid_thw": [1, 4, 8], "patch_rows": 32, "patch_dim": 1176,
                        "kept_tokens": 8, "per_device_batch": 2, "env": {}, "tuner": "lora"},
    "videollama3_full": {"recipe": "videollama3_full", "arch": "videollama3", "seq_len": 40, "video_tokens": 8,
                         "answer_tokens": 6, "grid_thw": [2, 4, 4], "patch_rows": 32, "patch_dim": 588,
                         "kept_tokens": 8, "per_device_batch": 1, "env": {}, "tuner": "full"},
}


@pytest.mark.e2e  # not a swift run, but ~1 min on CPU: kept out of the fast lane
def test_run_rehearsed_on_cpu_with_tiny_models(tmp_path: Path) -> None:
    manifest = {"clip": gpu_check.PAPER_CLIP, "shapes": SHAPES,
                "params": {arch: gpu_check.parameter_counts(arch) for arch in gpu_check.MODELS}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    report = gpu_check.run(tmp_path / "out", size="tiny", device="cpu", steps=1, deadline=600,
                           manifest_dir=tmp_path)
    assert json.loads((tmp_path / "out" / "gpu_check.json").read_text()) == report
    for recipe in SHAPES:
        entry = report["recipes"][recipe]
        train = entry["train"]
        assert train["samples_per_s"] > 0 and train["tokens_per_s"] > 0 and train["peak_memory_gib"] is None
        assert train["tokens_per_s"] == pytest.approx(train["samples_per_s"] * (3 + 8 + 1 + 40 + 5 + 6))
        assert entry["mfu_estimate"] > 0
        assert entry["epoch_minutes_8gpu"] == pytest.approx(6114 / (train["samples_per_s"] * 8) / 60)
    assert report["recipes"]["qwen2_5_vl_lora"]["train"]["trainable_params"] < 10**6  # LoRA: adapters only
    assert report["recipes"]["qwen2_5_vl_lora"]["generate"]["new_tokens_per_s"] > 0
    missing = "\n".join(report["not_measured"])
    assert "vLLM" in missing and "flash-attn" in missing  # not installed here: said, not skipped silently
    assert "| videollama3_full |" in gpu_check.table(report)


def test_report_projects_from_the_measurements() -> None:
    shape = {**SHAPES["videollama3_full"], "patch_rows": 1000}
    counts = {"total": 8_000_000_000, "llm": 7_600_000_000, "vision": 400_000_000, "projector": 0}
    train = {"samples_per_s": 0.5, "tokens_per_s": 5000.0, "peak_memory_gib": 70.0}
    report = gpu_check.build_report({"device": "H200"}, {"videollama3_full": {"shape": shape, "params": counts,
                                                                            "train": train}}, ["vllm: not installed"])
    entry = report["recipes"]["videollama3_full"]
    achieved = 6 * 7.6e9 * 5000 + 6 * 4e8 * 1000 * 0.5
    assert entry["mfu_estimate"] == pytest.approx(achieved / 989e12)
    assert entry["epoch_minutes_8gpu"] == pytest.approx(6114 / 4 / 60)  # 25.5 min
    assert "lower bound" in entry["projection"]
    text = gpu_check.table(report)
    assert "| videollama3_full | 70.0 | 0.500 | 5000 | 23.2% | 25.5 | – |" in text and "- vllm: not installed" in text


def test_shell_entry_point_needs_the_prepared_folder(tmp_path: Path) -> None:
    if (ROOT / "bench" / "gpu" / "manifest.json").exists():
        pytest.skip("bench/gpu is prepared in this checkout")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True,
                          env={**os.environ, "OUT": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["gpu_check.sh: error: bench/gpu/manifest.json not found: run `python "
                                        "bench/gpu_check.py prepare` on a CPU box and carry bench/gpu "
                                        "(bench/README.md)"]


@pytest.mark.e2e
def test_prepare_encodes_the_paper_sized_clip_with_the_real_templates(tmp_path: Path) -> None:
    manifest = gpu_check.prepare(tmp_path / "gpu", wheels=False)
    shapes = manifest["shapes"]
    assert set(shapes) == set(gpu_check.RECIPES)
    for shape in shapes.values():
        t, h, w = shape["grid_thw"]
        if shape["arch"] == "qwen2_5_vl":  # fps 1, <= 20 frames: 2 frames per temporal patch, 2x2 merge
            assert shape["video_tokens"] == t * h * w // 4 and shape["patch_dim"] == 3 * 2 * 14 * 14
        else:  # fps 2 over 5.7 s: VideoLLaMA3's sampler gives 11 frames; <= 10240 tokens before compression
            assert t == 11 and t * h * w // 4 <= 10240 and shape["patch_dim"] == 3 * 14 * 14
            assert shape["video_tokens"] == shape["kept_tokens"] <= t * h * w // 4
        assert shape["seq_len"] > shape["video_tokens"] + shape["answer_tokens"]
        assert shape["per_device_batch"] == (2 if shape["arch"] == "qwen2_5_vl" else 1)
    assert (tmp_path / "gpu" / manifest["clip"]["path"]).stat().st_size > 0
