"""The recipes (recipes/*.sh, recipes/ablations.py) executed for real on CPU with a tiny Qwen2.5-VL.

Each recipe runs as a user runs it, through its environment variables and pass-through flags, for 2 steps: the full
fine-tune under DeepSpeed ZeRO-3 through torchrun followed by recipes/infer.sh on the checkpoint, the LoRA recipe on an
ablation variant followed by recipes/infer.sh on the adapter, and the Python ablation recipe end to end (4 variants:
sft_main, infer_main, eval/score.py, table). The checks ride on those few runs: the config's values reach swift
(args.json), "$@" overrides the config, the config's ENV applies only when the variable is unset, VARIANT picks the
right files, a stale result file is replaced. Bad input fails with one line before swift starts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from common.jsonl import write_jsonl
from common.swift import CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_recipe
from prompts.deeptrace import REAL_ANSWER, VARIANTS, fake_answer, question
from recipes import lib, paper
from tests.support.media import write_mp4
from tests.support.swift_results import assert_results_follow_inputs

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
QWEN_FLAGS = ["--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl"]
STEPS = ["--max_steps", "2", "--max_length", "1024", "--logging_steps", "1"]
# Fake traces (bbox in source pixels of a 64x48 clip, onset seconds, explanation) and real clips (None).
TRACES = [([4, 6, 30, 40], 0.5, "a hand melts."), None, ([10, 2, 60, 20], 1.0, None), None]
SPLITS = {"train": [0, 1, 2, 3], "val": [0, 1], "test": [2, 1, 0]}


def sample(clip: Path, index: int, trace, variant: str, split: str) -> dict:
    """One converter-style row (messages + videos + meta, as converters/dataset_writer.build_samples writes)."""
    fake = trace is not None
    meta = {"task": "deeptrace", "video_id": f"v{index}", "label": "fake" if fake else "real",
            "bbox": trace[0] if fake else None, "start": trace[1] if fake else None, "end": None,
            "width": 64, "height": 48, "duration": 2.0, "fps": 4.0, "explanation": trace[2] if fake else None,
            "categories": [], "source": None, "variant": variant, "bbox_format": "pixels",
            "answer_bbox_format": "pixels", "split": split}
    answer = fake_answer(*trace, variant) if fake else REAL_ANSWER
    return {"messages": [{"role": "user", "content": question(variant)}, {"role": "assistant", "content": answer}],
            "videos": [str(clip)], "meta": meta}


def write_dataset(root: Path, variants=VARIANTS, subdirs: bool = True) -> Path:
    """A converter output directory: DATA/<variant>/{train,val,test}.jsonl (or DATA/*.jsonl + stats.json)."""
    clips = [write_mp4(root / "media" / f"v{i}.mp4", i) for i in range(len(TRACES))]
    for variant in variants:
        out = root / variant if subdirs else root
        for split, indices in SPLITS.items():
            write_jsonl(out / f"{split}.jsonl", [sample(clips[i], i, TRACES[i], variant, split) for i in indices])
        (out / "stats.json").write_text(json.dumps({"variant": variant}))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("deeptrace"))


def last_checkpoint(output_dir: Path) -> Path:
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert ckpts, f"no checkpoint in {output_dir}: {sorted(p.name for p in output_dir.iterdir())}"
    return ckpts[-1]


# --- configs: defined once, read the same way by swift and by the Python recipes ----------------------------------

def test_configs_hold_the_paper_settings() -> None:
    env, full = lib.load_config("qwen2_5_vl_full")
    assert env == {"GLOBAL_BATCH_SIZE": "16", "FPS": "1", "FPS_MAX_FRAMES": "20"}  # paper: 2 x 8 GPUs, fps 1, <= 20
    assert (full["tuner_type"], full["per_device_train_batch_size"], full["learning_rate"],
            full["num_train_epochs"], full["optim"]) == ("full", 2, 1e-5, 1, "adamw_torch")
    assert full["freeze_vit"] is False and full["freeze_aligner"] is False and full["freeze_llm"] is False
    lora_env, lora = lib.load_config("qwen2_5_vl_lora")
    assert lora["tuner_type"] == "lora" and lora_env == env
    for key in ("model_type", "template", "per_device_train_batch_size", "num_train_epochs", "optim", "adam_beta2",
                "weight_decay", "lr_scheduler_type", "warmup_ratio"):
        assert lora[key] == full[key], key  # the paper's data and optimiser settings agree between the two recipes
    for name in ("qwen2_5_vl_full", "qwen2_5_vl_lora", "infer"):
        assert not any(k in lib.load_config(name)[1] for k in ("model", "dataset", "output_dir", "deepspeed"))


def test_loader_expands_a_config_exactly_like_swift(monkeypatch: pytest.MonkeyPatch) -> None:
    from swift.cli.main import parse_yaml_args

    for name in ("qwen2_5_vl_full", "qwen2_5_vl_lora", "infer"):
        # parse_yaml_args writes os.environ: give it a throwaway copy. FPS is already set: both keep it.
        monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "FPS_MAX_FRAMES"})
        os.environ["FPS"] = "2"
        argv = [str(lib.config_path(name)), "--learning_rate", "3e-4"]
        parse_yaml_args(argv)
        swift_env = {k: os.environ.get(k) for k in ("FPS", "FPS_MAX_FRAMES")}
        env, flags = lib.load_config(name)
        environ = {"FPS": "2"}
        lib.apply_env(env, environ)
        assert argv == [*lib.to_argv(flags), "--learning_rate", "3e-4"]
        assert swift_env == {"FPS": "2", "FPS_MAX_FRAMES": environ.get("FPS_MAX_FRAMES")}


# --- variant -> files, in one place ----------------------------------------------------------------------------

def test_variant_file_resolution(data: Path, tmp_path: Path) -> None:
    for variant in VARIANTS:
        for split in ("train", "val", "test"):
            assert lib.split_file(data, variant, split) == (data / variant / f"{split}.jsonl").resolve()
    single = write_dataset(tmp_path / "single", ["no_time"], subdirs=False)  # converter run with one --variant
    assert lib.split_file(single, "no_time", "val") == (single / "val.jsonl").resolve()
    bad = [(tmp_path / "nope", "full", "train", "DATA directory not found"),
           (data, "no_times", "train", "unknown VARIANT 'no_times'"),
           (single, "full", "train", "no data for VARIANT=full"),
           (data, "full", "dev", "unknown SPLIT 'dev'")]
    for root, variant, split, message in bad:
        with pytest.raises(lib.UserError, match=message):
            lib.split_file(root, variant, split)
    (single / "stats.json").unlink()  # no stats.json: the top-level files are taken as `full`
    assert lib.split_file(single, "full", "test") == (single / "test.jsonl").resolve()


def test_bad_input_fails_with_one_line_before_swift(data: Path, tmp_path: Path) -> None:
    partial = tmp_path / "part"
    (partial / "no_time").mkdir(parents=True)
    shutil.copy(data / "no_time" / "train.jsonl", partial / "no_time" / "train.jsonl")  # no val.jsonl
    cases = [
        ("qwen2_5_vl_full.sh", {"DATA": str(tmp_path / "missing")}, "DATA directory not found"),
        ("qwen2_5_vl_lora.sh", {"DATA": str(data), "VARIANT": "no_tim"}, "unknown VARIANT 'no_tim'"),
        ("qwen2_5_vl_full.sh", {"DATA": str(partial), "VARIANT": "no_time"}, "val file not found"),
        ("qwen2_5_vl_full.sh", {"DATA": str(data), "NNODES": "2"}, "NNODES=2 needs MASTER_ADDR"),
        ("infer.sh", {"DATA": str(data)}, "set CKPT"),
        ("infer.sh", {"DATA": str(data), "CKPT": str(tmp_path / "nockpt")}, "checkpoint not found"),
        ("infer.sh", {"DATA": str(tmp_path), "CKPT": str(data)}, f"no data for VARIANT=full in {tmp_path}"),
    ]
    for i, (script, env, message) in enumerate(cases):
        log = tmp_path / f"bad{i}.log"
        proc = run_recipe(RECIPES / script, ["--max_steps", "2"], log=log, env={"MASTER_ADDR": None, **env},
                          check=False)
        lines = log.read_text().strip().splitlines()
        assert proc.returncode == 2, (script, env, lines)
        assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and message in lines[0], lines


# --- the bash recipes, executed -------------------------------------------------------------------------------

@pytest.mark.e2e
def test_full_recipe_zero3_torchrun_then_infer(tiny_qwen2_5_vl: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "full"
    # FPS / FPS_MAX_FRAMES unset: the config's ENV (fps 1, at most 20 frames) applies.
    env = {"MODEL": str(tiny_qwen2_5_vl), "DATA": str(data), "OUTPUT_DIR": str(out), "NPROC_PER_NODE": "1",
           "MASTER_PORT": str(29600 + os.getpid() % 300), "DEEPSPEED": "zero3", "FPS": None, "FPS_MAX_FRAMES": None,
           "GLOBAL_BATCH_SIZE": "2"}
    log = tmp_path / "full.log"
    run_recipe(RECIPES / "qwen2_5_vl_full.sh", [*STEPS, *CPU_TRAIN_FLAGS, *QWEN_FLAGS], log=log, env=env)
    text = log.read_text()
    assert "-m torch.distributed.run --nproc_per_node 1" in text  # ms-swift launched torchrun
    assert "Setting fps_max_frames: 20." in text and "Setting fps: 1.0." in text
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert args["learning_rate"] == 1e-5 and args["per_device_train_batch_size"] == 2  # from the config
    assert (args["adam_beta2"], args["weight_decay"], args["gradient_accumulation_steps"]) == (0.999, 0.0, 1)
    assert (args["tuner_type"], args["freeze_vit"], args["freeze_aligner"], args["freeze_llm"]) == (
        "full", False, False, False)
    assert args["deepspeed"]["zero_optimization"]["stage"] == 3
    assert args["dataset"] == [str(data / "full" / "train.jsonl")]
    assert args["val_dataset"] == [str(data / "full" / "val.jsonl")]
    assert (out / "qwen2_5_vl_full.yaml").is_file()  # swift keeps the config beside the run (infer.sh reads its ENV)

    # infer.sh on the training output dir (newest checkpoint): a stale result file is replaced, not appended to.
    result = ckpt / "infer" / "full-test.jsonl"
    result.parent.mkdir()
    write_jsonl(result, [{"stale": i} for i in range(5)])
    log = tmp_path / "infer_full.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "8"], log=log,
               env={"CKPT": str(out), "DATA": str(data), "FPS": None, "FPS_MAX_FRAMES": None})
    text = log.read_text()
    assert text.strip().splitlines()[-1] == str(result)
    assert "Setting fps_max_frames: 20." in text
    assert_results_follow_inputs(result, data / "full" / "test.jsonl", nonempty=False)


@pytest.mark.e2e
def test_lora_recipe_variant_and_override_then_infer_adapter(tiny_qwen2_5_vl: Path, data: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "lora"
    env = {"MODEL": str(tiny_qwen2_5_vl), "DATA": str(data), "VARIANT": "no_time", "OUTPUT_DIR": str(out),
           "NPROC_PER_NODE": "1", "MASTER_PORT": str(29300 + os.getpid() % 300), "DEEPSPEED": "none",
           "GLOBAL_BATCH_SIZE": "4"}
    log = tmp_path / "lora.log"
    run_recipe(RECIPES / "qwen2_5_vl_lora.sh", [*STEPS, *CPU_TRAIN_FLAGS, *QWEN_FLAGS, "--learning_rate", "3e-4"],
               log=log, env=env)
    text = log.read_text()
    # CPU_ENV's FPS_MAX_FRAMES=4 is already set: it wins over the config's ENV.
    assert "FPS_MAX_FRAMES is already set in environment, using `4` instead of `20`" in text
    assert "Setting fps_max_frames: 4." in text
    ckpt = last_checkpoint(out)
    args = json.loads((ckpt / "args.json").read_text())
    assert args["learning_rate"] == 3e-4  # "$@" overrides the config
    assert args["gradient_accumulation_steps"] == 2  # GLOBAL_BATCH_SIZE 4 = 2 per device x 1 process x 2 steps
    assert "qwen2_5_vl_lora.sh: global batch 4 (GLOBAL_BATCH_SIZE) = 2 per device x 1 process(es)" in text
    assert args["tuner_type"] == "lora" and args["lora_rank"] == 8 and args["deepspeed"] is None
    assert args["dataset"] == [str(data / "no_time" / "train.jsonl")]
    assert (ckpt / "adapter_model.safetensors").is_file()

    result = tmp_path / "preds" / "lora.jsonl"
    log = tmp_path / "infer_lora.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "8"], log=log,
               env={"CKPT": str(ckpt), "DATA": str(data), "VARIANT": "no_time", "SPLIT": "val",
                    "RESULT_PATH": str(result)})
    assert log.read_text().strip().splitlines()[-1] == str(result)
    assert "--adapters" in log.read_text()
    assert_results_follow_inputs(result, data / "no_time" / "val.jsonl", nonempty=False)


# --- the Python recipe -----------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_documented_torchrun_ablations_two_variants(tiny_qwen2_5_vl: Path, data: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node N recipes/ablations.py --data D` as documented (N=1 on CPU): DeepSpeed ZeRO-3 by
    default under torchrun, then in-process inference on the trained checkpoint (which crashed with `weight should
    have at least three dimensions` while the finished ZeRO-3 training's config was still registered), scoring and
    the table, for two variants in one process."""
    out = tmp_path / "abl"
    sft = " ".join([*STEPS, *CPU_TRAIN_FLAGS, "--add_version", "true"])
    infer = " ".join([*CPU_INFER_FLAGS, "--max_new_tokens", "24"])
    log = tmp_path / "ablations.log"
    port = str(29900 + os.getpid() % 90)
    run_recipe(RECIPES / "ablations.py", ["--data", str(data), "--model", str(tiny_qwen2_5_vl), "--output-dir",
                                          str(out), "--variants", "full,no_time", "--sft-flags", sft, "--infer-flags",
                                          infer, "--score-flags", "--bootstrap 0"],
               log=log, env={"OPENAI_API_KEY": None, "GLOBAL_BATCH_SIZE": "4"},
               launcher=["torchrun", "--nproc_per_node", "1", "--master_port", port])
    text = log.read_text()
    # The config's per-device batch 2 on 1 process: 2 accumulation steps make GLOBAL_BATCH_SIZE=4.
    assert "global batch 4 (GLOBAL_BATCH_SIZE) = 2 per device x 1 process(es) x 1 node(s) x 2 accumulation step(s)" \
        in text
    summary = json.loads((out / "ablations.json").read_text())
    assert list(summary["variants"]) == ["full", "no_time"]
    for variant, entry in summary["variants"].items():
        ckpt = Path(entry["checkpoint"])
        assert ckpt.parent.parent == out / variant  # swift's versioned run dir
        args = json.loads((ckpt / "args.json").read_text())
        assert args["deepspeed"]["zero_optimization"]["stage"] == 3  # ZeRO-3: the default under torchrun
        assert (args["gradient_accumulation_steps"], args["adam_beta2"]) == (2, 0.999)
        assert entry["references"] == str(data / variant / "test.jsonl")
        assert_results_follow_inputs(Path(entry["predictions"]), data / variant / "test.jsonl", nonempty=False)
        assert set(paper.METRICS) <= set(entry["metrics"])
        assert entry["metrics"]["explanation"] is None  # no judge without OPENAI_API_KEY
    table = (out / "ablations.md").read_text()
    assert "| paper | w/o time | 29.6 | 79.8 | 64.6 | 100.0 | 37.2 | 1.2 | 57.7 | 100.0 |" in table
    assert table.count("| ours |") == 2
    assert table in text


def test_ablations_checks_inputs_before_training(data: Path, tmp_path: Path) -> None:
    partial = tmp_path / "d"
    shutil.copytree(data / "full", partial / "full")
    log = tmp_path / "a.log"
    proc = run_recipe(RECIPES / "ablations.py", ["--data", str(partial), "--model", "x", "--no-score"], log=log,
                      check=False)
    assert proc.returncode == 2
    assert log.read_text().strip().splitlines() == [
        f"ablations.py: error: no data for VARIANT=no_time in {partial}: expected {partial}/no_time/ "
        f"(converter --variant all); found variant directories full"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
