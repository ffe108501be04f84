"""The spine: tiny local models, and the real `swift sft` / `swift infer` CLIs on generated images and mp4 clips.

These tests run ms-swift for real (LoRA, full, DeepSpeed ZeRO-2/3 through torchrun) on CPU with a tiny random
Qwen2.5-VL, and end with a learning test: a full fine-tune memorises DeeptraceReward answers that depend on the
video, and greedy `swift infer` reproduces them exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from common.jsonl import read_jsonl, write_jsonl
from common.swift import CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_swift
from prompts.deeptrace import REAL_ANSWER, fake_answer, question
from tests.support import tiny_models
from tests.support.media import write_mp4, write_png
from tests.support.swift_results import assert_results_follow_inputs

ROOT = Path(__file__).resolve().parents[2]
QWEN_FLAGS = ["--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl"]


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two image rows and two video rows (real PNG and H.264 mp4 files), absolute paths."""
    root = tmp_path_factory.mktemp("media")
    rows = []
    for i in range(2):
        img = write_png(root / f"img{i}.png", i)
        rows.append({"messages": [{"role": "user", "content": "<image>Is this image real or fake?"},
                                  {"role": "assistant", "content": ["real", "fake"][i]}], "images": [str(img)]})
        clip = write_mp4(root / f"clip{i}.mp4", 10 + i)
        rows.append({"messages": [{"role": "user", "content": "<video>Is this video real or fake?"},
                                  {"role": "assistant", "content": ["fake", "real"][i]}], "videos": [str(clip)]})
    path = root / "mixed.jsonl"
    write_jsonl(path, rows)
    return path


def sft(model: Path, data: Path, out: Path, *extra: str, steps: int = 2, **kwargs) -> Path:
    """`swift sft` for `steps` steps; returns the last checkpoint directory."""
    run_swift("sft", ["--model", str(model), *QWEN_FLAGS, "--dataset", str(data), "--output_dir", str(out),
                      "--max_steps", str(steps), "--save_steps", str(steps), "--per_device_train_batch_size", "1",
                      "--gradient_accumulation_steps", "1", "--logging_steps", "1", "--max_length", "1024",
                      *CPU_TRAIN_FLAGS, *extra], log=out.parent / f"{out.name}.sft.log", **kwargs)
    ckpt = out / f"checkpoint-{steps}"
    assert ckpt.is_dir(), f"no checkpoint in {out}: {sorted(p.name for p in out.iterdir())}"
    return ckpt


def infer(data: Path, result: Path, *model_args: str, max_new_tokens: int = 8) -> list[dict]:
    result.unlink(missing_ok=True)  # swift appends to an existing result file
    run_swift("infer", [*model_args, "--val_dataset", str(data), "--result_path", str(result),
                        "--max_new_tokens", str(max_new_tokens), "--temperature", "0", "--max_batch_size", "2",
                        *CPU_INFER_FLAGS], log=result.with_suffix(".log"))
    return read_jsonl(result)


def first_tensor(path: Path, name: str):
    with safe_open(str(path), "pt") as f:
        return f.get_tensor(name).float()


# --- tiny model builder ---------------------------------------------------------------------------------------

def test_tiny_qwen2_5_vl_loads_with_real_special_ids(tiny_qwen2_5_vl: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    size = sum(f.stat().st_size for f in tiny_qwen2_5_vl.iterdir())
    assert size <= 30 * 1024 * 1024
    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2_5_vl)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>",
                                     "<|file_sep|>"])
    assert ids == [151643, 151644, 151645, 151655, 151656, 151664]
    assert model.config.text_config.vocab_size == 151936
    answer = fake_answer([4, 6, 30, 40], 0.5, "a hand melts.")
    assert tok.decode(tok(answer).input_ids) == answer
    message = {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}
    text = processor.apply_chat_template([message], add_generation_prompt=True, tokenize=False)
    assert "<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n" in text
    assert json.loads((tiny_qwen2_5_vl / "tiny_model.json").read_text())["swift_args"] == QWEN_FLAGS


def test_tiny_model_cli_rejects_unknown_architecture(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/support/tiny_models.py"), "gpt9", str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    known = ", ".join(sorted(tiny_models.BUILDERS))
    assert proc.stderr.strip().splitlines() == [f"tiny_models.py: error: unknown architecture 'gpt9'; known: {known}"]
    assert not (tmp_path / "m").exists()


# --- swift sft / swift infer on images and videos -------------------------------------------------------------

@pytest.mark.e2e
def test_sft_lora_then_infer(tiny_qwen2_5_vl: Path, mixed_data: Path, tmp_path: Path) -> None:
    ckpt = sft(tiny_qwen2_5_vl, mixed_data, tmp_path / "lora", "--tuner_type", "lora", "--learning_rate", "1e-3")
    assert (ckpt / "adapter_model.safetensors").is_file()
    assert json.loads((ckpt / "adapter_config.json").read_text())["peft_type"] == "LORA"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and all(e["loss"] > 0 for e in state["log_history"] if "loss" in e)
    results = infer(mixed_data, tmp_path / "lora.jsonl", "--adapters", str(ckpt))
    assert_results_follow_inputs(results, mixed_data)


@pytest.mark.e2e
def test_sft_full_then_infer(tiny_qwen2_5_vl: Path, mixed_data: Path, tmp_path: Path) -> None:
    ckpt = sft(tiny_qwen2_5_vl, mixed_data, tmp_path / "full", "--tuner_type", "full", "--learning_rate", "1e-3",
               "--freeze_vit", "false", "--freeze_aligner", "false", "--save_only_model", "true")
    # Full means full: the vision tower was updated too.
    name = "visual.blocks.0.attn.qkv.weight"
    before = first_tensor(tiny_qwen2_5_vl / "model.safetensors", name)
    after = first_tensor(ckpt / "model.safetensors", name)
    assert not (before == after).all()
    results = infer(mixed_data, tmp_path / "full.jsonl", "--model", str(ckpt), *QWEN_FLAGS)
    assert_results_follow_inputs(results, mixed_data)


# --- DeepSpeed through torchrun (one process) -----------------------------------------------------------------

@pytest.mark.e2e
def test_deepspeed_zero2_lora(tiny_qwen2_5_vl: Path, mixed_data: Path, tmp_path: Path) -> None:
    ckpt = sft(tiny_qwen2_5_vl, mixed_data, tmp_path / "ds2", "--tuner_type", "lora", "--deepspeed", "zero2",
               nproc_per_node=1)
    assert (ckpt / "adapter_model.safetensors").is_file()
    assert (ckpt / "global_step2").is_dir()  # DeepSpeed's own checkpoint layout
    args = json.loads((ckpt / "args.json").read_text())
    assert args["deepspeed"]["zero_optimization"]["stage"] == 2


@pytest.mark.e2e
def test_deepspeed_zero3_full_then_infer(tiny_qwen2_5_vl: Path, mixed_data: Path, tmp_path: Path) -> None:
    ckpt = sft(tiny_qwen2_5_vl, mixed_data, tmp_path / "ds3", "--tuner_type", "full", "--deepspeed", "zero3",
               "--learning_rate", "1e-3", nproc_per_node=1)
    assert (ckpt / "global_step2").is_dir()
    args = json.loads((ckpt / "args.json").read_text())
    assert args["deepspeed"]["zero_optimization"]["stage"] == 3
    results = infer(mixed_data, tmp_path / "ds3.jsonl", "--model", str(ckpt), *QWEN_FLAGS)
    assert_results_follow_inputs(results, mixed_data)


# --- learning: data -> template -> labels -> inference is consistent -------------------------------------------

@pytest.mark.e2e
def test_full_finetune_memorises_deeptrace_answers(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    traces = [([4, 6, 30, 40], 0.5, "a hand melts."), ([10, 2, 60, 20], 1.0, "the dog has five legs."),
              ([0, 0, 32, 24], 0.2, None), None, ([20, 10, 50, 44], 1.5, "the car floats.")]
    rows = []
    for i, trace in enumerate(traces):
        clip = write_mp4(tmp_path / f"v{i}.mp4", i)
        answer = REAL_ANSWER if trace is None else fake_answer(*trace)
        rows.append({"messages": [{"role": "user", "content": question()}, {"role": "assistant", "content": answer}],
                     "videos": [str(clip)]})
    answers = [r["messages"][1]["content"] for r in rows]
    assert len(set(answers)) == len(answers) >= 4
    data = tmp_path / "train.jsonl"
    write_jsonl(data, rows)
    ckpt = sft(tiny_qwen2_5_vl, data, tmp_path / "mem", "--tuner_type", "full", "--learning_rate", "5e-3",
               "--lr_scheduler_type", "cosine", "--warmup_ratio", "0.05", "--freeze_vit", "false",
               "--freeze_aligner", "false", "--save_only_model", "true", "--seed", "42", steps=300)
    results = infer(data, tmp_path / "mem.jsonl", "--model", str(ckpt), *QWEN_FLAGS, max_new_tokens=64)
    assert [r["response"] for r in results] == answers
