"""eval/reward.py end to end: a tiny Qwen2.5-VL trained to open its answer with a verdict, then the one command from a
folder of mp4 files to per-video rewards (swift infer with logprobs through recipes/infer.sh) and a summary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.jsonl import read_jsonl, write_jsonl
from common.swift import CPU_ENV, CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_swift
from prompts.deeptrace import question
from tests.support.media import write_mp4

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_reward_command_reads_p_real_off_the_logprobs(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    videos = tmp_path / "generated"
    clips = {"genA/a0.mp4": "FAKE.", "genA/a1.mp4": "FAKE.", "genB/b0.mp4": "REAL.", "genB/b1.mp4": "REAL."}
    rows = []
    for i, (name, answer) in enumerate(clips.items()):
        clip = write_mp4(videos / name, i)
        rows.append({"messages": [{"role": "user", "content": question("full")},
                                  {"role": "assistant", "content": answer}], "videos": [str(clip)]})
    write_jsonl(tmp_path / "train.jsonl", rows)
    sft = tmp_path / "sft"
    run_swift("sft", ["--model", str(tiny_qwen2_5_vl), "--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl",
                      "--tuner_type", "full", "--dataset", str(tmp_path / "train.jsonl"), "--output_dir", str(sft),
                      "--max_steps", "36", "--learning_rate", "5e-3", "--lr_scheduler_type", "constant",
                      "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1", "--save_steps", "36",
                      "--save_only_model", "true", "--gradient_checkpointing", "false", *CPU_TRAIN_FLAGS],
              log=tmp_path / "sft.log")

    out = tmp_path / "rewards"
    log = tmp_path / "reward.log"
    with open(log, "w") as fh:
        subprocess.run([sys.executable, str(ROOT / "eval" / "reward.py"), str(videos), "--ckpt", str(sft), "--out",
                        str(out), "--top-logprobs", "20", "--tolerance", "0.2", "--", *CPU_INFER_FLAGS,
                        "--max_new_tokens", "6"],
                       env={**os.environ, **CPU_ENV}, stdout=fh, stderr=subprocess.STDOUT, check=True)

    preds = read_jsonl(out / "predictions.jsonl")
    assert len(preds) == 4 and all(p["logprobs"]["content"] for p in preds)
    rewards = read_jsonl(out / "rewards.jsonl")
    assert [r["video"] for r in rewards] == sorted(clips) and {r["group"] for r in rewards} == {"genA", "genB"}
    # (a tiny model spreads some probability over many tokens: its P(REAL) is bounded to a few points, hence the
    # --tolerance above; a trained 7B detector leaves almost nothing outside its top 20)
    scored = [r for r in rewards if r["verdict_status"] == "ok"]
    assert scored, [(r["response"], r["verdict_status"]) for r in rewards]  # the model opens with a verdict
    by_path = {p["videos"][0]: p for p in preds}
    for r in scored:
        # the verdict is the first token: P(REAL) from its listed alternatives, by hand
        first = by_path[r["path"]]["logprobs"]["content"][r["verdict_token"]]
        assert r["verdict_token"] == 0 and r["response"].startswith(("REAL", "FAKE"))
        listed = {alt["token"]: math.exp(alt["logprob"]) for alt in first["top_logprobs"]}
        real = sum(p for t, p in listed.items() if t.strip() and ("REAL".startswith(t.strip()) or
                                                                  t.strip().startswith("REAL")))
        fake = sum(p for t, p in listed.items() if t.strip() and ("FAKE".startswith(t.strip()) or
                                                                  t.strip().startswith("FAKE")))
        assert 0.0 <= r["p_real"] <= 1.0
        assert r["p_real"] == pytest.approx(real / (real + fake), abs=1e-6)
        assert r["p_real_low"] <= r["p_real"] <= r["p_real_high"]
    summary = read_jsonl(out / "summary.jsonl")
    assert [s["group"] for s in summary][-1] == "(all)" and summary[-1]["videos"] == 4
    assert summary[-1]["with_p_real"] == len(scored)
    assert (out / "rewards.csv").read_text().splitlines()[0].startswith("video,group,p_real,verdict")
    assert "reward.py: 4 videos" in log.read_text()
