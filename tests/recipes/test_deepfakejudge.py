"""DeepfakeJudge end to end on CPU with a tiny random Qwen2.5-VL, every step as a user runs it:

released-shaped split (images/ + data.jsonl) → converters/deepfakejudge_to_swift.py → recipes/dfj_*_lora.sh for 2 steps
→ recipes/infer.sh INPUT=… → eval/score.py; and judge inputs built from a FakeClue prediction file, which `swift infer`
runs (through recipes/infer.sh) with the trained judge. Four swift calls in all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from common.jsonl import read_jsonl, write_jsonl
from common.swift import CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_recipe
from tests.eval.test_deepfakejudge import BAD, GOOD, fakeclue_refs, infer_lines, pairwise_split, pointwise_split

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONVERTER = ROOT / "converters" / "deepfakejudge_to_swift.py"
SCORE = ROOT / "eval" / "score.py"
QWEN_FLAGS = ["--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl"]
TRAIN = ["--max_steps", "2", "--logging_steps", "1", *CPU_TRAIN_FLAGS, *QWEN_FLAGS]
INFER = [*CPU_INFER_FLAGS, "--max_new_tokens", "12"]


def convert(tmp_path: Path, *args: object) -> Path:
    argv = [str(a) for a in args]
    out = Path(argv[argv.index("--out") + 1])
    run_recipe(CONVERTER, argv, log=tmp_path / f"convert-{out.stem}.log")
    return out


def train(tmp_path: Path, recipe: str, model: Path, dataset: Path, port: int) -> Path:
    out = tmp_path / recipe
    env = {"MODEL": str(model), "DATASET": str(dataset), "OUTPUT_DIR": str(out), "NPROC_PER_NODE": "1",
           "MASTER_PORT": str(port + os.getpid() % 300), "DEEPSPEED": "none"}
    log = tmp_path / f"{recipe}.log"
    run_recipe(ROOT / "recipes" / f"{recipe}.sh", TRAIN, log=log, env=env)
    assert "-m torch.distributed.run --nproc_per_node 1" in log.read_text()
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert ckpts and (ckpts[-1] / "adapter_model.safetensors").is_file()
    assert (out / f"{recipe}.yaml").is_file()  # swift keeps the config beside the run; infer.sh reads its ENV
    return ckpts[-1]


def infer(tmp_path: Path, ckpt: Path, inputs: Path) -> Path:
    log = tmp_path / f"infer-{inputs.stem}.log"
    run_recipe(ROOT / "recipes" / "infer.sh", INFER, log=log, env={"CKPT": str(ckpt), "INPUT": str(inputs)})
    result = Path(log.read_text().strip().splitlines()[-1])
    assert result == ckpt / "infer" / inputs.name
    rows, refs = read_jsonl(result), read_jsonl(inputs)
    assert len(rows) == len(refs)
    for row, ref in zip(rows, refs, strict=True):  # swift kept the order and the prompt, byte for byte (CRLF)
        assert [i["path"] for i in row["images"]] == ref["images"]
        assert row["messages"][0]["content"] == ref["messages"][0]["content"]
        assert isinstance(row["response"], str)
    return result


def score(tmp_path: Path, predictions: Path, references: Path) -> dict:
    out = tmp_path / f"{predictions.stem}.metrics.json"
    log = tmp_path / f"score-{predictions.stem}.log"
    run_recipe(SCORE, ["--predictions", str(predictions), "--references", str(references), "--out", str(out),
                       "--bootstrap", "20"], log=log)
    result = json.loads(out.read_text())
    assert result["counts"]["parsed"] + result["counts"]["unparseable"] == result["counts"]["n"]
    assert result["join"]["by_media"] == result["counts"]["n"]
    assert f"| {result['task']} |" in log.read_text()
    return result


def test_pointwise_judge_recipe_infer_score(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    meta_dir = tmp_path / "DeepfakeJudge-Dataset" / "dfj-meta" / "dfj-meta-pointwise"
    train_jsonl = convert(tmp_path, pointwise_split(meta_dir / "train", 4), "--out", tmp_path / "pw_train.jsonl")
    test_jsonl = convert(tmp_path, pointwise_split(meta_dir / "test", 3), "--out", tmp_path / "pw_test.jsonl")
    ckpt = train(tmp_path, "dfj_pointwise_lora", tiny_qwen2_5_vl, train_jsonl, 29700)
    args = json.loads((ckpt / "args.json").read_text())
    assert (args["tuner_type"], args["lora_rank"], args["lora_alpha"], args["target_modules"]) == (
        "lora", 32, 64, ["all-linear"])
    assert (args["learning_rate"], args["num_train_epochs"], args["per_device_train_batch_size"],
            args["max_length"], args["freeze_vit"]) == (1e-6, 2, 16, 4096, True)
    # Upstream's global batch 32 (16 per GPU x 2 GPUs) on 1 process: 2 accumulation steps; ms-swift's AdamW beta2.
    assert (args["gradient_accumulation_steps"], args["adam_beta2"]) == (2, 0.95)
    assert args["dataset"] == [str(train_jsonl)]

    result = score(tmp_path, infer(tmp_path, ckpt, test_jsonl), test_jsonl)
    assert result["task"] == "dfj-pointwise" and result["counts"]["with_truth"] == 3
    assert result["join"]["by_labels"] == 3  # the predictions' labels are the converted targets


def test_pairwise_judge_recipe_then_judging_fakeclue_predictions(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    split = pairwise_split(tmp_path / "DeepfakeJudge-Dataset" / "dfj-meta" / "dfj-meta-pairwise" / "train", 4)
    train_jsonl = convert(tmp_path, split, "--out", tmp_path / "pair_train.jsonl")
    ckpt = train(tmp_path, "dfj_pairwise_lora", tiny_qwen2_5_vl, train_jsonl, 29400)
    args = json.loads((ckpt / "args.json").read_text())
    assert (args["lora_rank"], args["learning_rate"], args["max_length"]) == (32, 1e-6, 2048)

    # A FakeClue detector's predictions (swift infer result lines) graded by the judges: pointwise inputs from one
    # prediction file, pairwise inputs in both orders from two; one swift infer run over both.
    refs = fakeclue_refs(tmp_path, ["fake", "real", "fake"])
    first = infer_lines(refs, ["This is a fake image. The fur merges into the fence.",
                               "This is a real image. Shadows agree.", "This is a real image."],
                        tmp_path / "fakeclue_preds.jsonl")
    second = infer_lines(refs, [GOOD, BAD, GOOD], tmp_path / "other_preds.jsonl")
    point = convert(tmp_path, "--build", "pointwise", "--candidates", first, "--references", refs, "--out",
                    tmp_path / "judge_point.jsonl")
    pair = convert(tmp_path, "--build", "pairwise", "--candidates", first, second, "--references", refs,
                   "--both-orders", "--out", tmp_path / "judge_pair.jsonl")
    point_rows, pair_rows = read_jsonl(point), read_jsonl(pair)
    assert (len(point_rows), len(pair_rows)) == (3, 6)
    both = tmp_path / "judge_all.jsonl"
    write_jsonl(both, point_rows + pair_rows)
    results = read_jsonl(infer(tmp_path, ckpt, both))
    write_jsonl(tmp_path / "point_preds.jsonl", results[:3])
    write_jsonl(tmp_path / "pair_preds.jsonl", results[3:])

    graded = score(tmp_path, tmp_path / "point_preds.jsonl", point)
    assert graded["task"] == "dfj-pointwise" and graded["counts"]["with_truth"] == 0
    assert graded["metrics"]["rmse"] is None and graded["candidates"] == [str(first)]
    compared = score(tmp_path, tmp_path / "pair_preds.jsonl", pair)
    assert compared["task"] == "dfj-pairwise" and compared["counts"]["pairs_both_orders"] == 3
    assert compared["candidates"] == [str(first), str(second)]
