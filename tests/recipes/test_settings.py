"""Recipe settings: the global-batch rule (one owner, recipes/lib.py; for SFT and GRPO, GRPO's generation round
checked against ms-swift's own code), the values settled from their sources, and the docs' settings tables generated
from the configs (recipes/settings_doc.py). Fast: no swift run."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.swift import run_recipe
from recipes import lib, settings_doc

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
SFT_RECIPES = ("qwen2_5_vl_full", "qwen2_5_vl_lora", "videollama3_full", "videollama3_lora", "fakevlm_llava_full",
               "fakeclue_qwen2_5_vl_lora", "dfj_pointwise_lora", "dfj_pairwise_lora")
GRPO_CONFIGS = ("qwen2_5_vl_grpo_lora", "qwen2_5_vl_grpo_full", "videollama3_grpo_lora", "videollama3_grpo_full")


# --- global batch -> gradient accumulation ----------------------------------------------------------------------

@pytest.mark.parametrize(("global_batch", "per_device", "nproc", "nnodes", "steps"), [
    (8, 1, 8, 1, 1), (8, 1, 4, 1, 2), (8, 1, 2, 2, 2), (8, 1, 1, 1, 8), (256, 32, 8, 1, 1), (256, 32, 2, 1, 4),
    (32, 16, 2, 1, 1), (32, 16, 1, 1, 2), (16, 2, 4, 2, 1),
])
def test_accumulation_makes_the_global_batch(global_batch, per_device, nproc, nnodes, steps) -> None:
    assert lib.gradient_accumulation(global_batch, per_device, nproc, nnodes) == steps
    assert per_device * nproc * nnodes * steps == global_batch


@pytest.mark.parametrize(("global_batch", "per_device", "nproc", "nnodes"), [(8, 1, 3, 1), (8, 2, 8, 1), (16, 2, 3, 2),
                                                                            (256, 32, 16, 1)])
def test_accumulation_refuses_what_does_not_divide(global_batch, per_device, nproc, nnodes) -> None:
    with pytest.raises(lib.UserError, match=rf"GLOBAL_BATCH_SIZE={global_batch} is not a multiple of per-device "
                                            rf"batch {per_device} x NPROC_PER_NODE={nproc} x NNODES={nnodes}"):
        lib.gradient_accumulation(global_batch, per_device, nproc, nnodes)


def test_batch_plan_reads_config_flags_and_environment() -> None:
    env = {"NPROC_PER_NODE": "4", "NNODES": "1"}
    assert lib.batch_plan("videollama3_full", [], env)[0] == 2  # config: global 8, 1 per device
    assert lib.batch_plan("qwen2_5_vl_full", [], env)[0] == 2  # config: global 16, 2 per device
    assert lib.batch_plan("fakevlm_llava_full", [], {"NPROC_PER_NODE": "8"})[0] == 1  # 256 = 32 x 8
    assert lib.batch_plan("dfj_pointwise_lora", [], {"NPROC_PER_NODE": "2"})[0] == 1  # 32 = 16 x 2
    # The last --per_device_train_batch_size wins (both spellings), as in swift.
    flags = ["--per_device_train_batch_size", "4", "--max_steps", "2", "--per_device_train_batch_size=8"]
    assert lib.batch_plan("fakevlm_llava_full", flags, {"NPROC_PER_NODE": "8"})[0] == 4
    # GLOBAL_BATCH_SIZE in the environment wins over the config's ENV.
    steps, how = lib.batch_plan("videollama3_full", [], {**env, "GLOBAL_BATCH_SIZE": "32"})
    assert steps == 8 and how == "global batch 32 (GLOBAL_BATCH_SIZE) = 1 per device x 4 process(es) x 1 node(s) x 8 " \
                                 "accumulation step(s)"
    # An explicit --gradient_accumulation_steps wins, and the line says what global batch it makes.
    steps, how = lib.batch_plan("videollama3_full", ["--gradient_accumulation_steps", "3"], env)
    assert steps == 3 and how.startswith("global batch 12 = ") and "GLOBAL_BATCH_SIZE not applied" in how
    with pytest.raises(lib.UserError, match="NPROC_PER_NODE must be a whole number"):
        lib.batch_plan("videollama3_full", [], {"NPROC_PER_NODE": "eight"})
    with pytest.raises(lib.UserError, match="GLOBAL_BATCH_SIZE=8 is not a multiple"):
        lib.batch_plan("videollama3_full", [], {"NPROC_PER_NODE": "3"})


def test_every_training_config_has_its_global_batch() -> None:
    paper = {"qwen2_5_vl_full": 16, "qwen2_5_vl_lora": 16, "videollama3_full": 8, "videollama3_lora": 8,
             "fakevlm_llava_full": 256, "fakeclue_qwen2_5_vl_lora": 256, "dfj_pointwise_lora": 32,
             "dfj_pairwise_lora": 32,
             **dict.fromkeys(GRPO_CONFIGS, 64)}  # GRPO (no paper): 8 prompts x 8 completions per step
    assert sorted(paper) == settings_doc.training_configs() == sorted((*SFT_RECIPES, *GRPO_CONFIGS))
    for name in paper:
        env, flags = lib.load_config(name)
        assert int(env["GLOBAL_BATCH_SIZE"]) == paper[name], name
        assert "gradient_accumulation_steps" not in flags, name  # derived by the scripts, never a second copy


def swift_generation_round():
    """ms-swift 4.6's own derivation and checks of GRPO's generation round (RolloutTrainerArgumentsMixin.
    _init_generation_batch_params), read from its installed source: importing the module loads swift's trainers."""
    source = Path(importlib.util.find_spec("swift").origin).parent / "rlhf_trainers" / "args_mixin.py"
    text = source.read_text(encoding="utf-8")
    (node,) = [n for n in ast.walk(ast.parse(text))
               if isinstance(n, ast.FunctionDef) and n.name == "_init_generation_batch_params"]
    namespace: dict = {}
    exec(textwrap.dedent(ast.get_source_segment(text, node)), namespace)
    return namespace["_init_generation_batch_params"]


def test_grpo_generation_round_is_swifts() -> None:
    """lib.generation_round accepts exactly what ms-swift accepts, with the same round size, so that a recipe's
    one-line refusal comes before swift starts and never refuses what swift would run."""
    swift_rule = swift_generation_round()
    checked = refused = 0
    for per_device, world, accumulation, group, size, steps in itertools.product(
            (1, 2, 4), (1, 2, 3, 8), (1, 2, 3), (2, 4, 8), (None, 8, 12, 16), (None, 1, 2, 4)):
        args = SimpleNamespace(num_generations=group, world_size=world, per_device_train_batch_size=per_device,
                               gradient_accumulation_steps=accumulation, generation_batch_size=size,
                               steps_per_generation=steps, eval_strategy="no")
        try:
            swift_rule(args)
            expected = args.generation_batch_size
        except ValueError:
            expected = None
        try:
            got = lib.generation_round(per_device * world, accumulation, group, size, steps)
        except lib.UserError:
            got = None
        assert got == expected, (per_device, world, accumulation, group, size, steps)
        checked += 1
        refused += got is None
    assert checked == 1728 and 0 < refused < checked


def test_grpo_batch_plan_counts_completions_and_refuses_split_groups() -> None:
    steps, how = lib.batch_plan("videollama3_grpo_lora", [], {"NPROC_PER_NODE": "8", "NNODES": "2"})
    assert steps == 4 and how == ("global batch 64 (videollama3_grpo_lora ENV) = 1 per device x 8 process(es) x 2 "
                                  "node(s) x 4 accumulation step(s); GRPO counts completions: 8 prompt(s) x 8 "
                                  "generations per generation round")
    # flags given to the recipe count as swift counts them
    assert lib.batch_plan("qwen2_5_vl_grpo_lora", ["--num_generations", "16"], {"NPROC_PER_NODE": "8"})[1].endswith(
        "4 prompt(s) x 16 generations per generation round")
    assert lib.batch_plan("qwen2_5_vl_grpo_lora", ["--steps_per_generation", "4"], {"NPROC_PER_NODE": "8"})[1].endswith(
        "16 prompt(s) x 8 generations per generation round")
    with pytest.raises(lib.UserError, match=r"GRPO generation round of 12 completions \(the global batch\) is not "
                                            r"a multiple of --num_generations 8: .* change GLOBAL_BATCH_SIZE, the"):
        lib.batch_plan("qwen2_5_vl_grpo_lora", [], {"NPROC_PER_NODE": "1", "GLOBAL_BATCH_SIZE": "12"})
    with pytest.raises(lib.UserError, match="change --gradient_accumulation_steps, the number of GPUs"):
        lib.batch_plan("qwen2_5_vl_grpo_full", ["--gradient_accumulation_steps", "1"], {"NPROC_PER_NODE": "3"})
    with pytest.raises(lib.UserError, match="--generation_batch_size 12 is not a multiple of per-device batch x "
                                            "processes = 8"):
        lib.batch_plan("qwen2_5_vl_grpo_lora", ["--generation_batch_size", "12"], {"NPROC_PER_NODE": "2"})
    # SFT configs have no generation round
    assert "GRPO" not in lib.batch_plan("qwen2_5_vl_lora", ["--num_generations", "3"], {"NPROC_PER_NODE": "8"})[1]


def test_a_later_stage_takes_what_the_model_saw_not_the_runs_batch() -> None:
    env, _ = lib.load_config("videollama3_full")
    assert lib.trained_env(env) == {"FPS": "2", "FPS_MAX_FRAMES": "180", "VIDEO_TOTAL_PIXELS": "8028160"}
    out = subprocess.run([sys.executable, str(RECIPES / "lib.py"), "env", "--trained", "videollama3_full"],
                         capture_output=True, text=True, check=True, env={**os.environ, "FPS": "1"}).stdout
    assert out.splitlines() == ["export FPS_MAX_FRAMES=180", "export VIDEO_TOTAL_PIXELS=8028160"]


def test_recipe_refuses_a_batch_that_does_not_divide(tmp_path: Path) -> None:
    dataset = tmp_path / "train.jsonl"
    dataset.write_text("{}\n")
    log = tmp_path / "bad.log"
    proc = run_recipe(RECIPES / "fakevlm_llava_full.sh", ["--max_steps", "2"], log=log, check=False,
                      env={"DATASET": str(dataset), "NPROC_PER_NODE": "3", "GLOBAL_BATCH_SIZE": None})
    lines = log.read_text().strip().splitlines()
    assert proc.returncode == 2
    assert lines == ["fakevlm_llava_full.sh: error: GLOBAL_BATCH_SIZE=256 is not a multiple of per-device batch 32 x "
                     "NPROC_PER_NODE=3 x NNODES=1 = 96: change --per_device_train_batch_size, the number of GPUs or "
                     "GLOBAL_BATCH_SIZE"]


# --- values settled from their sources ---------------------------------------------------------------------------

def test_values_follow_their_sources() -> None:
    _, vl3 = lib.load_config("videollama3_full")
    # VideoLLaMA3 stage 4: llm 1e-5, projector 1e-5, vision encoder 2e-6; HF Trainer's AdamW beta2 0.999.
    assert (vl3["learning_rate"], vl3["aligner_lr"], vl3["vit_lr"], vl3["adam_beta2"]) == (1e-5, 1e-5, 2e-6, 0.999)
    assert (vl3["weight_decay"], vl3["warmup_ratio"], vl3["lr_scheduler_type"], vl3["max_length"]) == (
        0.0, 0.03, "cosine", 16384)
    _, fakevlm = lib.load_config("fakevlm_llava_full")
    assert (fakevlm["adam_beta2"], fakevlm["weight_decay"], fakevlm["max_length"]) == (0.999, 0.0, 1024)
    script = (RECIPES / "fakevlm_llava_full.sh").read_text()
    assert 'DEEPSPEED="${DEEPSPEED:-zero2}"' in script and "ZeRO-3" not in script.split("set -euo")[0]
    for name in ("dfj_pointwise_lora", "dfj_pairwise_lora"):  # upstream trains with ms-swift's defaults
        _, dfj = lib.load_config(name)
        assert (dfj["adam_beta2"], dfj["weight_decay"], dfj["lr_scheduler_type"]) == (0.95, 0.1, "cosine")
    for name in ("qwen2_5_vl_full", "qwen2_5_vl_lora", "videollama3_lora", "fakeclue_qwen2_5_vl_lora"):
        assert lib.load_config(name)[1]["adam_beta2"] == 0.999, name


# --- docs generated from the configs --------------------------------------------------------------------------

def test_settings_tables_match_the_configs() -> None:
    assert settings_doc.stale() == []
    assert set(settings_doc.training_configs()) <= settings_doc.documented()  # SFT and GRPO
    table = settings_doc.render("videollama3_full")
    assert "| `vit_lr` | `2.0e-6` | not in the paper: VideoLLaMA3 stage 4 --vision_encoder_lr 2e-6 |" in table
    assert "| `DEEPSPEED (script)` | `zero3` |" in table
    table = settings_doc.render("qwen2_5_vl_grpo_lora")
    assert table.startswith("Generated from `recipes/configs/qwen2_5_vl_grpo_lora.yaml` (`python")
    assert "| `ENV GLOBAL_BATCH_SIZE` | `64` | not in the paper (no RL there): completions per step = 8 prompts x " \
           "num_generations 8;" in table


def test_settings_doc_refuses_a_setting_without_source(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text("ENV:\n  FPS: 2   # paper\nlearning_rate: 1.0e-5\n")
    with pytest.raises(lib.UserError, match=r"x.yaml:3: learning_rate has no source comment"):
        settings_doc.config_rows(str(config))


def test_settings_doc_check_names_a_stale_table(tmp_path: Path) -> None:
    doc = tmp_path / "DOC.md"
    doc.write_text("<!-- settings: dfj_pairwise_lora -->\nold\n<!-- /settings -->\n")
    assert settings_doc.stale((doc,)) == ["DOC.md: dfj_pairwise_lora"]
    assert settings_doc.write((doc,)) == ["DOC.md"]
    assert settings_doc.stale((doc,)) == []
    proc = subprocess.run([sys.executable, str(RECIPES / "settings_doc.py")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("settings tables are current"), proc.stderr


# --- the opt-in GPU extras ------------------------------------------------------------------------------------------

def test_gpu_extras_are_refused_on_a_cpu_box(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    for device in ("cpu", "gpu", "auto"):  # even SETUP_DEVICE=gpu: nvidia-smi must list a GPU
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "SETUP_EXTRAS": "gpu", "SETUP_DEVICE": device,
                                   "VENV": str(venv)})
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines() == ["setup: SETUP_EXTRAS=gpu needs a GPU machine (nvidia-smi lists no GPU "
                                            "here): nothing was changed"]
    assert not venv.exists()
    pins = dict(line.split("#")[0].strip().split("==") for line in (ROOT / "requirements-gpu.txt").read_text()
                .splitlines() if line.strip() and not line.startswith("#"))
    assert pins == {"vllm": "0.32.0", "liger-kernel": "0.8.5", "flash-attn": "2.8.3.post2"}
