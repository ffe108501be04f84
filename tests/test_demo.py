"""The README's main job, end to end: `recipes/demo.py` (what `bash recipes/demo.sh` runs after set-up).

It builds the tiny Qwen2.5-VL, converts the bundled LabelBox sample, trains with the full fine-tuning recipe
`recipes/qwen2_5_vl_full.sh` itself, generates with `recipes/infer.sh` and scores with `eval/score.py`, here
against the local OpenAI-compatible judge server. A tiny model that memorises its training clips must then score
perfectly on the train split: every verdict right and, per video (a video with two traces has one right answer
per input, so the paper's per-sample protocol cannot reach 100 on it), IoU 100, time distance 0, explanation 100.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from common.jsonl import read_jsonl
from tests.judge_server import JudgeServer

ROOT = Path(__file__).resolve().parents[1]


def test_demo_memorises_the_sample_and_scores_it_perfectly(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with JudgeServer() as server:
        proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "demo.py"), "--out", str(out),
                               "--judge-base-url", server.base_url, "--judge-model", "rule-judge"],
                              env={**os.environ, "OPENAI_API_KEY": "sk-test-demo"}, capture_output=True, text=True,
                              cwd=tmp_path)
        judged = server.answered()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    train_args = json.loads((out / "train" / "args.json").read_text())
    assert train_args["model_type"] == "qwen2_5_vl" and train_args["tuner_type"] == "full"
    assert train_args["freeze_vit"] is False and train_args["freeze_aligner"] is False  # the recipe's own config

    refs = read_jsonl(out / "data" / "train.jsonl")
    preds = read_jsonl(out / "preds_train.jsonl")
    assert len(preds) == len(refs) == 7
    # Every prediction is one of its video's reference answers, word for word.
    answers: dict[str, set[str]] = {}
    for ref in refs:
        answers.setdefault(ref["videos"][0], set()).add(ref["messages"][-1]["content"])
    for pred, ref in zip(preds, refs, strict=True):
        assert pred["response"] in answers[ref["videos"][0]]

    metrics = json.loads((out / "metrics_train.json").read_text())
    assert metrics["counts"]["unparseable"] == 0
    assert metrics["metrics"]["accuracy"] == 100.0
    per_video = metrics["per_video"]["metrics"]
    assert per_video["accuracy"] == 100.0
    assert per_video["bbox_iou"] == 100.0
    assert per_video["time_distance"] == 0.0
    assert per_video["explanation"] == 100.0
    assert judged and all(r["body"]["model"] == "rule-judge" for r in judged)

    assert "## Train split" in proc.stdout and "## Test split" in proc.stdout
    assert f"Outputs in {out}" in proc.stdout
    assert (out / "metrics_test.json").is_file()
