"""GRPO: recipes/qwen2_5_vl_grpo.sh and recipes/videollama3_grpo.sh with the reward plugin recipes/plugins/rewards.py.

The end-to-end test is the whole RL path on CPU: the bundled LabelBox sample converted, a tiny Qwen2.5-VL briefly
fine-tuned on it with the LoRA SFT recipe, then GRPO from that adapter with the DeeptraceReward rewards and the
DeepfakeJudge reasoning reward served by a real HTTP server on 127.0.0.1. The VideoLLaMA3 recipe runs one full-RL step
through its plugin. The other tests check the settings (configs, presets) and the recipes' one-line errors.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.swift import CPU_TRAIN_FLAGS, run_recipe
from prompts import deepfakejudge as dfj
from recipes import lib
from tests.support.judge_server import JudgeServer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
SAMPLE = ROOT / "samples" / "deeptrace"
QWEN_FLAGS = ["--model_type", "qwen2_5_vl", "--template", "qwen2_5_vl"]
# GRPO on CPU: one prompt per step with 4 completions of at most 40 tokens (GLOBAL_BATCH_SIZE=4 on 1 process: 1
# accumulation step), no gradient checkpointing.
GRPO_CPU = ["--num_generations", "4", "--per_device_train_batch_size", "4", "--max_completion_length", "40",
            "--gradient_checkpointing", "false", "--logging_steps", "1"]
GRPO_CPU_BATCH = "global batch 4 (GLOBAL_BATCH_SIZE) = 4 per device x 1 process(es) x 1 node(s) x 1 accumulation " \
                 "step(s); GRPO counts completions: 1 prompt(s) x 4 generations per generation round"
PRESETS = ("deeptrace", "deeptrace_judge", "fakeclue", "fakeclue_judge")


def registered_rewards() -> set[str]:
    """The reward names recipes/plugins/rewards.py registers (read from its REWARDS table, without importing swift)."""
    tree = ast.parse((RECIPES / "plugins" / "rewards.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "REWARDS":
            return {key.value for key in node.value.keys}
    raise AssertionError("no REWARDS table in recipes/plugins/rewards.py")


# --- settings ----------------------------------------------------------------------------------------------------

def test_grpo_configs_share_their_rollout_settings_and_the_papers_frames() -> None:
    shared = ("rlhf_type", "model_type", "template", "num_generations", "temperature", "max_completion_length",
              "per_device_train_batch_size", "beta", "use_vllm", "num_iterations")
    for model, sft in (("qwen2_5_vl", "qwen2_5_vl_full"), ("videollama3", "videollama3_full")):
        lora_env, lora = lib.load_config(f"{model}_grpo_lora")
        full_env, full = lib.load_config(f"{model}_grpo_full")
        assert {k: lora[k] for k in shared} == {k: full[k] for k in shared}
        assert (lora["rlhf_type"], lora["tuner_type"], full["tuner_type"]) == ("grpo", "lora", "full")
        assert lora["learning_rate"] > full["learning_rate"]
        # the SFT recipe's frames (the paper's); the global batch is GRPO's own (completions, not clips)
        sft_env = lib.load_config(sft)[0]
        assert lib.trained_env(lora_env) == lib.trained_env(full_env) == lib.trained_env(sft_env)
        assert set(lib.trained_env(sft_env)) >= {"FPS", "FPS_MAX_FRAMES"}
        assert lora_env[lib.GLOBAL_BATCH_VAR] == full_env[lib.GLOBAL_BATCH_VAR] == "64"
        assert full["freeze_vit"] is False and lora["freeze_vit"] is True
        # the global batch, on any GPU count, is made by accumulation (the SFT recipes' rule) and holds whole groups
        # of num_generations (8 prompts x 8 completions)
        for nproc, nnodes in ((1, 1), (2, 1), (4, 1), (8, 1), (8, 2)):
            steps, how = lib.batch_plan(f"{model}_grpo_lora", [], {"NPROC_PER_NODE": str(nproc), "NNODES": str(nnodes)})
            assert steps * lora["per_device_train_batch_size"] * nproc * nnodes == 64, (model, nproc, nnodes)
            assert how.endswith("8 prompt(s) x 8 generations per generation round"), how
        for flags in (lora, full):
            assert not any(k in flags for k in ("model", "dataset", "output_dir", "deepspeed", "reward_funcs",
                                                "gradient_accumulation_steps"))


def test_reward_presets_name_registered_rewards_with_one_weight_each() -> None:
    names = registered_rewards()
    assert names == {"deeptrace_format", "deeptrace_verdict", "deeptrace_grounding", "deeptrace_onset",
                     "fakeclue_verdict", "fakeclue_rouge_l", "dfj_reasoning"}
    for preset in PRESETS:
        env, flags = lib.load_config(f"rewards/{preset}")
        assert set(flags) == {"reward_funcs", "reward_weights"}, preset
        assert set(flags["reward_funcs"]) <= names and len(flags["reward_weights"]) == len(flags["reward_funcs"])
        assert ("dfj_reasoning" in flags["reward_funcs"]) == preset.endswith("_judge") == bool(env)
    _, judge = lib.load_config("rewards/deeptrace_judge")
    _, plain = lib.load_config("rewards/deeptrace")
    assert judge["reward_funcs"][:-1] == plain["reward_funcs"] and judge["reward_weights"][:-1] == plain[
        "reward_weights"]


def test_flags_cli_prints_argv_one_item_per_line() -> None:
    out = subprocess.run([sys.executable, str(RECIPES / "lib.py"), "flags", "rewards/deeptrace"], check=True,
                         capture_output=True, text=True).stdout
    assert out.splitlines() == ["--reward_funcs", "deeptrace_format", "deeptrace_verdict", "deeptrace_grounding",
                                "deeptrace_onset", "--reward_weights", "0.25", "1.0", "1.0", "1.0"]


def test_start_flags_from_each_kind_of_sft_checkpoint(tmp_path: Path) -> None:
    adapter = tmp_path / "lora" / "v0" / "checkpoint-4"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "args.json").write_text(json.dumps({"model": "/models/base"}))
    full = tmp_path / "full" / "checkpoint-8"
    full.mkdir(parents=True)
    (full / "config.json").write_text("{}")
    (tmp_path / "full" / "qwen2_5_vl_full.yaml").write_text("ENV: {FPS: 1}\n")
    assert lib.start_flags(tmp_path / "lora", "lora") == ["--model", "/models/base", "--adapters", str(adapter),
                                                          "--ref_adapters", str(adapter)]
    assert lib.start_flags(adapter, "lora", "/other/base")[:2] == ["--model", "/other/base"]
    assert lib.start_flags(tmp_path / "full", "lora") == ["--model", str(full)]
    assert lib.start_flags(full, "full") == ["--model", str(full)]
    assert lib.start_flags("Qwen/Qwen2.5-VL-7B-Instruct", "lora") == ["--model", "Qwen/Qwen2.5-VL-7B-Instruct"]
    with pytest.raises(lib.UserError, match="is a LoRA adapter: full RL needs a full model; merge it first"):
        lib.start_flags(adapter, "full")
    with pytest.raises(lib.UserError, match="unknown TUNER 'qlora'"):
        lib.start_flags(full, "qlora")
    (adapter / "args.json").write_text("{}")
    with pytest.raises(lib.UserError, match="without a base model in .*args.json; set MODEL"):
        lib.start_flags(adapter, "lora")
    assert lib.train_config(full) == (tmp_path / "full" / "qwen2_5_vl_full.yaml").resolve()
    assert lib.train_config(adapter) is None and lib.train_config(tmp_path / "nowhere") is None


def test_solutions_keep_each_rows_answer(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "<video>Q"}, {"role": "assistant", "content": "REAL."}],
             "videos": ["a.mp4"], "meta": {"label": "real"}},
            {"messages": [{"role": "user", "content": "<video>Q"}], "videos": ["b.mp4"]}]
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert lib.with_solutions(src, tmp_path / "out" / "grpo.jsonl") == 2
    got = [json.loads(line) for line in (tmp_path / "out" / "grpo.jsonl").read_text().splitlines()]
    assert got == [{**rows[0], "solution": "REAL."}, rows[1]]
    with pytest.raises(lib.UserError, match="would overwrite the source data"):
        lib.with_solutions(src, src)


def test_bad_input_fails_with_one_line_before_swift(tmp_path: Path) -> None:
    adapter = tmp_path / "ckpt"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "args.json").write_text(json.dumps({"model": "/models/base"}))
    # the SFT run's config beside the checkpoint: its frames apply to GRPO, its global batch (clips) does not
    (adapter / "qwen2_5_vl_lora.yaml").write_text("ENV: {GLOBAL_BATCH_SIZE: 16, FPS: 1}\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("{}\n")
    ready = {"SFT_CKPT": str(adapter), "DATA": str(data)}
    cases = [
        ("qwen2_5_vl_grpo.sh", {}, "set SFT_CKPT"),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(tmp_path / "none")}, "checkpoint not found"),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(adapter), "TUNER": "full"}, "full RL needs a full model"),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(adapter), "DATA": str(tmp_path / "no")}, "DATA directory not found"),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(adapter), "DATASET": str(tmp_path / "x.jsonl")},
         "DATASET file not found"),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(adapter), "DATA": str(data), "REWARDS": "accuracy"},
         "config not found: " + str(RECIPES / "configs" / "rewards" / "accuracy.yaml")),
        ("qwen2_5_vl_grpo.sh", {"SFT_CKPT": str(adapter), "DATA": str(data), "VLLM": "yes"},
         "VLLM must be true or false"),
        ("videollama3_grpo.sh", {"SFT_CKPT": str(adapter), "TUNER": "qlora"}, "unknown TUNER 'qlora'"),
        ("videollama3_grpo.sh", {"SFT_CKPT": str(adapter), "VLLM": "true"}, "VideoLLaMA3 rollouts use transformers"),
        # the global-batch rule of every recipe, and GRPO's groups (ms-swift's own check, made before swift starts)
        ("qwen2_5_vl_grpo.sh", {**ready, "NPROC_PER_NODE": "3"},
         "GLOBAL_BATCH_SIZE=64 is not a multiple of per-device batch 4 x NPROC_PER_NODE=3 x NNODES=1 = 12"),
        ("qwen2_5_vl_grpo.sh", {**ready, "NPROC_PER_NODE": "1", "GLOBAL_BATCH_SIZE": "12"},
         "GRPO generation round of 12 completions (the global batch) is not a multiple of --num_generations 8"),
        ("videollama3_grpo.sh", {**ready, "NPROC_PER_NODE": "2", "NNODES": "3", "MASTER_ADDR": "127.0.0.1"},
         "GLOBAL_BATCH_SIZE=64 is not a multiple of per-device batch 1 x NPROC_PER_NODE=2 x NNODES=3 = 6"),
    ]
    for i, (script, env, message) in enumerate(cases):
        log = tmp_path / f"bad{i}.log"
        out = tmp_path / f"out{i}"
        proc = run_recipe(RECIPES / script, ["--max_steps", "2"], log=log,
                          env={"SFT_CKPT": None, "GLOBAL_BATCH_SIZE": None, "OUTPUT_DIR": str(out), **env},
                          check=False)
        lines = log.read_text().strip().splitlines()
        assert proc.returncode == 2, (script, env, lines)
        assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and message in lines[0], lines
        assert not out.exists()  # nothing written before the error


# --- the plugin ----------------------------------------------------------------------------------------------------

@pytest.mark.e2e  # imports ms-swift's reward registry (torch, transformers: ~10-20 s)
def test_reward_plugin_scores_each_completion_with_its_tasks_terms() -> None:
    """The plugin's reward classes, as GRPO calls them (a batch; dataset columns by name), give each completion its
    task's term from eval/rl_rewards.py, None for another task's sample."""
    from swift.rewards import orms
    from swift.utils import import_external_file

    from eval import rl_rewards
    from prompts.deeptrace import REAL_ANSWER, fake_answer
    from tests.support.eval_samples import reference

    import_external_file(str(RECIPES / "plugins" / "rewards.py"))
    # fractional meta numbers: the trained answer (the `solution` column) says the rounded ones, which the rewards
    # score against (a reward that ignored the column would score the answer below 1)
    record = reference("v1", "fake", bbox=[10.4, 10.6, 30.5, 29.5], start=1.04, explanation="a hand melts.",
                       width=100, height=50, duration=4.0)
    fake_meta, trained = record["meta"], record["messages"][-1]["content"]
    real_meta = reference("r1", "real", width=100, height=50, duration=4.0)["meta"]
    clue_meta = {"task": "fakeclue", "label": "fake", "cate": "human",
                 "answer": "This is a fake image. The hands have six fingers."}
    clue_trained = "This is a fake image. The hands look odd."
    answer = fake_answer([20, 10, 40, 30], 2.0, "a hand melts.", "full")
    batch = {"completions": [trained, answer, REAL_ANSWER, "no idea", clue_trained, "This is a real image."],
             "meta": [fake_meta, fake_meta, real_meta, fake_meta, clue_meta, clue_meta],
             "videos": [["/v/v1.mp4"], ["/v/v1.mp4"], ["/v/r1.mp4"], ["/v/v1.mp4"], None, None],
             "images": [None, None, None, None, ["/i/x.png"], ["/i/x.png"]],
             "solution": [trained, trained, REAL_ANSWER, None, clue_trained, None]}
    rows = list(zip(*batch.values(), strict=True))
    expected = {"deeptrace": [rl_rewards.deeptrace_terms(c, m, v, s) for c, m, v, _, s in rows],
                "fakeclue": [rl_rewards.fakeclue_terms(c, m, None, i, s) for c, m, _, i, s in rows]}
    assert (expected["deeptrace"][0]["grounding"], expected["fakeclue"][4]["rouge_l"]) == (1.0, 1.0)
    for name in registered_rewards() - {"dfj_reasoning"}:
        task, term = name.split("_", 1)
        got = orms[name]()(**batch)
        assert got == pytest.approx([terms[term] for terms in expected[task]]), name
        assert got[4 if task == "deeptrace" else 0] is None  # another task's sample
    with pytest.raises(ValueError, match="reward deeptrace_verdict needs the dataset column 'meta'"):
        orms["deeptrace_verdict"]()(completions=[answer])


# --- end to end --------------------------------------------------------------------------------------------------

_CANDIDATE = re.compile(r"Candidate response:\n(.*)\nOutput \(Strict Format\):", re.S)  # the LF prompt


def length_judge(request: dict) -> dict:
    """A stand-in DeepfakeJudge: score 1 + (length of the candidate response mod 5), so scores vary."""
    text = request["body"]["messages"][0]["content"][-1]["text"]
    found = _CANDIDATE.search(text)
    score = 1 + len(found.group(1)) % 5 if found else 3
    return {"reply": f"<reasoning>length</reasoning>\n<score>{score}</score>"}


def judged(completion: str) -> float:
    return len(completion) % 5 / 4.0


def convert_sample(out: Path) -> Path:
    """The bundled LabelBox sample converted as a user converts it (the converter's CLI), to `out`."""
    subprocess.run([sys.executable, str(ROOT / "converters" / "labelbox_to_swift.py"), str(SAMPLE / "export_v2.ndjson"),
                    "--media-root", str(SAMPLE / "videos"), "--real-videos", str(SAMPLE / "real"), "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.e2e
def test_grpo_after_sft_with_the_scorer_and_judge_rewards(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    data = convert_sample(tmp_path / "data")
    sft = tmp_path / "sft"
    run_recipe(RECIPES / "qwen2_5_vl_lora.sh",
               [*CPU_TRAIN_FLAGS, *QWEN_FLAGS, "--max_steps", "10", "--learning_rate", "1e-3", "--save_strategy",
                "steps", "--save_steps", "10", "--eval_strategy", "no", "--per_device_train_batch_size", "1",
                "--gradient_checkpointing", "false"],
               log=tmp_path / "sft.log",
               env={"MODEL": str(tiny_qwen2_5_vl), "DATA": str(data), "OUTPUT_DIR": str(sft), "DEEPSPEED": "none",
                    "NPROC_PER_NODE": "1", "GLOBAL_BATCH_SIZE": "1", "MASTER_PORT": str(29400 + os.getpid() % 300)})
    out = tmp_path / "grpo"
    with JudgeServer(script=length_judge) as server:
        env = {"SFT_CKPT": str(sft), "DATA": str(data), "REWARDS": "deeptrace_judge", "OUTPUT_DIR": str(out),
               "DEEPSPEED": "none", "NPROC_PER_NODE": "1", "GLOBAL_BATCH_SIZE": "4",
               "MASTER_PORT": str(29700 + os.getpid() % 200),
               "DFJ_JUDGE_BASE_URL": server.base_url, "DFJ_JUDGE_MODEL": "dfj-test", "OPENAI_API_KEY": "EMPTY"}
        log = tmp_path / "grpo.log"
        run_recipe(RECIPES / "qwen2_5_vl_grpo.sh", [*CPU_TRAIN_FLAGS, *QWEN_FLAGS, *GRPO_CPU, "--max_steps", "2"],
                   log=log, env=env)
        requests = server.answered()

    args = json.loads((out / "args.json").read_text())
    adapter = lib.find_checkpoint(sft)[1]
    assert (args["adapters"], args["ref_adapters"], args["model"]) == ([str(adapter)], [str(adapter)],
                                                                      str(tiny_qwen2_5_vl))
    _, preset = lib.load_config("rewards/deeptrace_judge")
    assert (args["reward_funcs"], args["reward_weights"]) == (preset["reward_funcs"], preset["reward_weights"])
    assert args["learning_rate"] == 1e-5 and args["beta"] == 0.04  # from configs/qwen2_5_vl_grpo_lora.yaml
    assert args["gradient_accumulation_steps"] == 1 and f"qwen2_5_vl_grpo.sh: {GRPO_CPU_BATCH}" in log.read_text()
    # swift's own derivation of the generation round (made in the trainer's arguments, not in args.json)
    import torch  # here: the fast lane of this file needs no torch

    trained = torch.load(out / "checkpoint-2" / "training_args.bin", weights_only=False)
    assert (trained.steps_per_generation, trained.generation_batch_size) == (1, 4)
    # the train split with each row's answer kept as `solution` (GRPO drops it from messages; the rewards read it)
    assert args["dataset"] == [str(out / "grpo_train.jsonl")]
    rows = [json.loads(line) for line in (out / "grpo_train.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    assert rows == [{**row, "solution": row["messages"][-1]["content"]} for row in train]
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()

    classes = ("DeeptraceFormat", "DeeptraceVerdict", "DeeptraceGrounding", "DeeptraceOnset", "DfjReasoning")
    steps = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "reward" in s]
    assert len(steps) == 2
    for step in steps:  # the rewards that apply to every sample are logged at every step; the others where they apply
        assert {"rewards/DeeptraceVerdict/mean", "rewards/DfjReasoning/mean"} <= set(step), step
    assert all(any(f"rewards/{name}/mean" in step for step in steps) for name in classes), steps
    assert any(step["reward_std"] > 0 for step in steps)  # something for the advantages to work with

    # each logged completion's rewards: in [0, 1] (or not applicable), the judge's exactly its stand-in score
    # (ms-swift writes the last round a second time when training ends)
    rounds = list({r["step"][0]: r for r in map(json.loads, (out / "completions.jsonl").read_text().splitlines())
                   }.values())
    completions = [c for r in rounds for c in r["completion"]]
    assert len(completions) == 8
    for r in rounds:
        for name in classes:
            assert all(math.isnan(v) or 0.0 <= v <= 1.0 for v in r[name]), (name, r[name])
        assert r["DfjReasoning"] == [judged(c) for c in r["completion"]]
    # the judge saw its own prompt, filled with each completion, after the clip's frames
    assert len(requests) == len(set(completions))
    for entry in requests:
        parts = entry["body"]["messages"][0]["content"]
        assert entry["model"] == "dfj-test" and parts[0]["type"] == "text" and parts[0]["text"].startswith("Time ")
        assert any(p["type"] == "image_url" for p in parts)
        assert parts[-1]["text"].startswith(dfj.pointwise_prompt("real", "", newline="lf").split("Ground Truth")[0])
    stats = json.loads((out / "dfj_reasoning_stats.json").read_text())
    assert stats["completions"]["judged"] == 8 and stats["neutral"] == 0


@pytest.mark.e2e
def test_videollama3_grpo_full_one_step(tiny_videollama3: Path, tmp_path: Path) -> None:
    data = convert_sample(tmp_path / "data")
    out = tmp_path / "grpo"
    features = tmp_path / "video_features.log"
    env = {"SFT_CKPT": str(tiny_videollama3), "TUNER": "full", "DATA": str(data), "OUTPUT_DIR": str(out),
           "DEEPSPEED": "none", "NPROC_PER_NODE": "1", "GLOBAL_BATCH_SIZE": "4",
           "MASTER_PORT": str(29900 + os.getpid() % 90),
           "COUNT_VIDEO_FEATURES_LOG": str(features)}
    plugins = [str(RECIPES / "plugins" / "videollama3.py"), str(RECIPES / "plugins" / "rewards.py")]
    counter = str(ROOT / "tests" / "support" / "count_video_features.py")
    log = tmp_path / "grpo.log"
    run_recipe(RECIPES / "videollama3_grpo.sh", [*CPU_TRAIN_FLAGS, *GRPO_CPU, "--max_steps", "1",
                                                 "--save_strategy", "no", "--external_plugins", *plugins, counter],
               log=log, env=env)
    args = json.loads((out / "args.json").read_text())
    assert (args["model_type"], args["tuner_type"], args["model"], args["freeze_vit"]) == (
        "videollama3", "full", str(tiny_videollama3), False)
    assert args["external_plugins"] == [*plugins, counter]
    assert args["gradient_accumulation_steps"] == 1 and f"videollama3_grpo.sh: {GRPO_CPU_BATCH}" in log.read_text()
    # the clip's features enter the rollouts (no gradient) and the loss forward (with gradient), never empty
    calls = features.read_text().split()
    assert "grad=False" in calls and "grad=True" in calls and "n=0" not in calls
    (step,) = [s for s in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "reward" in s]
    assert {"rewards/DeeptraceVerdict/mean", "rewards/DeeptraceFormat/mean"} <= set(step)
