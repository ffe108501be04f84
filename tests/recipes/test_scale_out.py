"""The cluster paths rehearsed on one CPU box: a recipe launched as two nodes on 127.0.0.1 (NNODES=2, NODE_RANK=0 and
1, gloo) trains 2 steps under DeepSpeed ZeRO-2 with the config's global batch split over both and saves one
checkpoint; then data-parallel inference (`NPROC_PER_NODE=2 recipes/infer.sh`) on that checkpoint writes one result
line per input, in input order.

On a CPU-only host DeepSpeed with 2+ processes needs `--use_cpu true`: without it the HF Trainer builds accelerate's
state as not distributed and counts world size 1 while DeepSpeed counts 2, and DeepSpeed stops at its batch check
(`train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size 2 != 1 * 2 * 2`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.jsonl import write_jsonl
from common.swift import CPU_ENV, CPU_INFER_FLAGS, CPU_TRAIN_FLAGS, run_recipe
from tests.recipes.test_qwen2_5_vl import QWEN_FLAGS, sample, write_dataset
from tests.support.swift_results import assert_results_follow_inputs

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
pytestmark = pytest.mark.e2e


def launch(script: Path, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a recipe as `run_recipe` does (CPU_ENV, this environment's swift first on PATH), without waiting."""
    full = {**os.environ, **CPU_ENV, **env, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                                      os.environ.get("PATH", "")])}
    return subprocess.Popen(["bash", str(script), *args], env=full, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_nodes_on_one_box_then_data_parallel_inference(tiny_qwen2_5_vl: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", ["full"])  # 4 train clips
    out = tmp_path / "run"
    common = {"MODEL": str(tiny_qwen2_5_vl), "DATA": str(data), "OUTPUT_DIR": str(out), "NPROC_PER_NODE": "1",
              "NNODES": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29100 + os.getpid() % 300),
              "DEEPSPEED": "zero2", "GLOBAL_BATCH_SIZE": "4"}
    flags = ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1",
             "--eval_strategy", "no", "--max_length", "1024", "--per_device_train_batch_size", "1",
             "--use_cpu", "true", *CPU_TRAIN_FLAGS, *QWEN_FLAGS]
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    nodes = [launch(RECIPES / "qwen2_5_vl_lora.sh", flags, {**common, "NODE_RANK": str(rank)}, logs[rank])
             for rank in (1, 0)]
    try:
        codes = [node.wait(timeout=900) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    for rank, log in enumerate(logs):
        text = log.read_text()
        assert f"--nnodes 2 --node_rank {rank} --master_addr 127.0.0.1" in text  # ms-swift launched torchrun
        assert "global batch 4 (GLOBAL_BATCH_SIZE) = 1 per device x 1 process(es) x 2 node(s) x 2 accumulation" in text
        assert f"rank: {rank}, local_rank: 0, world_size: 2, local_world_size: 1" in text
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # one checkpoint, saved once
    args = json.loads((out / "checkpoint-2" / "args.json").read_text())
    assert (args["gradient_accumulation_steps"], args["per_device_train_batch_size"]) == (2, 1)
    assert args["deepspeed"]["zero_optimization"]["stage"] == 2
    steps = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    # 4 samples split over 2 nodes, 2 accumulation steps each: one optimizer step per epoch. Unsharded, every node
    # would see all 4 samples and the first step would end at epoch 0.5.
    assert steps[0]["global_step/max_steps"] == "1/2" and steps[0]["epoch"] == 1.0

    # Data-parallel inference on the 2-node checkpoint: 7 inputs (uneven over 2 processes), results in input order.
    inputs = tmp_path / "inputs.jsonl"
    clips = sorted((data / "media").glob("v*.mp4"))
    traces = [([4, 6, 30, 40], 0.5, "a hand melts."), None, ([10, 2, 60, 20], 1.0, None)]
    write_jsonl(inputs, [sample(clips[i % len(clips)], i, traces[i % 3], "full", "test") for i in range(7)])
    log = tmp_path / "infer.log"
    run_recipe(RECIPES / "infer.sh", [*CPU_INFER_FLAGS, "--max_new_tokens", "6"], log=log,
               env={"CKPT": str(out), "INPUT": str(inputs), "NPROC_PER_NODE": "2",
                    "MASTER_PORT": str(29400 + os.getpid() % 300)})
    text = log.read_text()
    assert "-m torch.distributed.run --nproc_per_node 2" in text
    assert "[rank0]" in text and "[rank1]" in text  # both processes generated
    result = Path(text.strip().splitlines()[-1])
    assert result == out / "checkpoint-2" / "infer" / "inputs.jsonl"
    assert_results_follow_inputs(result, inputs, nonempty=False)
