"""The README's main job, end to end: `recipes/demo.py` (what `bash recipes/demo.sh` runs after set-up).

It builds the tiny native VideoLLaMA3, converts the bundled LabelBox sample, trains with the headline recipe
`recipes/videollama3_full.sh` itself (through the ms-swift plugin), generates with `recipes/infer.sh` and scores
with `eval/score.py`, here against the local OpenAI-compatible judge server. The tiny model memorises its
training clips: every verdict right; clips with one right answer reproduced word for word; per video time distance
0 and explanation 100. A video with two traces has two right answers for one input (so the paper's per-sample
protocol cannot reach 100 on it); there the tiny model may take one box number from the other trace (measured:
pika15_0001 answered [10, 24, 54, 38] for [40, 24, 54, 38] / [10, 8, 24, 22], per-video IoU 77.3).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.jsonl import read_jsonl
from tests.support.judge_server import JudgeServer

ROOT = Path(__file__).resolve().parents[2]
BOX = re.compile(r"\[(\d+), (\d+), (\d+), (\d+)\]")


def split_box(answer: str) -> tuple[str, tuple[str, ...]]:
    """The answer with its box replaced by `[box]`, and the box's four numbers."""
    found = BOX.search(answer)
    assert found, answer
    return answer[:found.start()] + "[box]" + answer[found.end():], found.groups()


@pytest.mark.e2e
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
    assert train_args["model_type"] == "videollama3" and train_args["template"] == "videollama3"
    assert train_args["tuner_type"] == "full"
    assert train_args["freeze_vit"] is False and train_args["freeze_aligner"] is False  # the recipe's own config
    assert any(p.endswith("recipes/plugins/videollama3.py") for p in train_args["external_plugins"])

    refs = read_jsonl(out / "data" / "train.jsonl")
    preds = read_jsonl(out / "preds_train.jsonl")
    assert len(preds) == len(refs) == 7
    answers: dict[str, set[str]] = {}
    for ref in refs:
        answers.setdefault(ref["videos"][0], set()).add(ref["messages"][-1]["content"])
    for pred, ref in zip(preds, refs, strict=True):
        right = answers[ref["videos"][0]]
        if len(right) == 1:  # one right answer (real clips, one-trace videos): reproduced word for word
            assert pred["response"] in right
        else:  # two traces, one input: apart from the box, one of the answers; each box number one of theirs
            assert split_box(pred["response"])[0] in {split_box(a)[0] for a in right}
            for i, value in enumerate(split_box(pred["response"])[1]):
                assert value in {split_box(a)[1][i] for a in right}

    metrics = json.loads((out / "metrics_train.json").read_text())
    assert metrics["counts"]["unparseable"] == 0
    assert metrics["metrics"]["accuracy"] == 100.0
    per_video = metrics["per_video"]["metrics"]
    assert per_video["accuracy"] == 100.0
    assert per_video["bbox_iou"] >= 75.0  # measured 77.3: the one-number slip on pika15_0001 (recipes/VIDEOLLAMA3.md)
    assert per_video["time_distance"] == 0.0
    assert per_video["explanation"] == 100.0
    assert judged and all(r["body"]["model"] == "rule-judge" for r in judged)

    assert "## Train split" in proc.stdout and "## Test split" in proc.stdout
    assert f"Outputs in {out}" in proc.stdout
    assert (out / "metrics_test.json").is_file()
