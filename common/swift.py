"""Running the real ms-swift CLIs (`swift sft`, `swift infer`) from Python, with one set of CPU settings.

Used by the tests, the CPU demo and benchmarks, so that every CPU run of ms-swift uses one set of flags.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# Offline, and video budgets small enough for CPU (8 video tokens for a 64x48 clip).
CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "MODELSCOPE_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "VIDEO_MAX_PIXELS": "3136",
    "VIDEO_MIN_PIXELS": "784",
    "FPS_MAX_FRAMES": "4",
    "MAX_PIXELS": "50176",
}
# `swift sft` on CPU: float32 (no bf16/fp16 on CPU), no model-hub check, no reporters, no worker processes.
CPU_TRAIN_FLAGS = [
    "--torch_dtype", "float32", "--fp16", "false", "--bf16", "false", "--check_model", "false",
    "--report_to", "none", "--dataloader_num_workers", "0", "--dataset_num_proc", "1", "--add_version", "false",
]
# `swift infer` rejects the training-only flags above.
CPU_INFER_FLAGS = ["--torch_dtype", "float32", "--infer_backend", "transformers"]


def swift_bin() -> str:
    """The `swift` entry point of the running interpreter's environment."""
    candidate = Path(sys.executable).with_name("swift")
    return str(candidate) if candidate.exists() else "swift"


class SwiftError(RuntimeError):
    pass


def run_swift(command: str, args: Sequence[str], *, log: str | os.PathLike[str],
              cwd: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
              nproc_per_node: int | None = None,
              master_port: int | None = None) -> subprocess.CompletedProcess:
    """Run `swift <command> <args>` with CPU_ENV, output to `log`; raise SwiftError with the log's tail on failure.

    `nproc_per_node` launches through torchrun (as ms-swift does when NPROC_PER_NODE is set): DeepSpeed on CPU
    needs it (without torchrun it asks for mpi4py).
    """
    full_env = {**os.environ, **CPU_ENV, **(env or {})}
    if nproc_per_node is not None:
        full_env["NPROC_PER_NODE"] = str(nproc_per_node)
        full_env["MASTER_PORT"] = str(master_port or 29500 + os.getpid() % 1000)
    return _run_logged([swift_bin(), command, *args], f"swift {command}", log=log, cwd=cwd, env=full_env)


def run_recipe(script: str | os.PathLike[str], args: Sequence[str] = (), *, log: str | os.PathLike[str],
               env: Mapping[str, str | None] | None = None, cwd: str | os.PathLike[str] | None = None,
               check: bool = True, launcher: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run a recipe (`bash x.sh` or, for x.py, this interpreter) like run_swift: CPU_ENV, stdout+stderr to `log`.

    The running interpreter's bin directory goes first on PATH, so the recipe's `swift` and `python` are this
    environment's. `env` entries override CPU_ENV; a value of None removes the variable. With `check=False` a
    failure returns the CompletedProcess instead of raising SwiftError. `launcher` replaces the interpreter for a
    Python recipe, e.g. `["torchrun", "--nproc_per_node", "1"]` (a bare name resolves next to this interpreter).
    """
    full_env = {**os.environ, **CPU_ENV}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env.get("PATH", "")])
    runner = [sys.executable] if str(script).endswith(".py") else ["bash"]
    if launcher:
        tool = Path(sys.executable).with_name(launcher[0])
        runner = [str(tool) if tool.exists() else launcher[0], *launcher[1:]]
    return _run_logged([*runner, str(script), *args], f"{Path(runner[0]).name} {Path(script).name}", log=log,
                       cwd=cwd, env=full_env, check=check)


def _run_logged(cmd: Sequence[str], what: str, *, log: str | os.PathLike[str], cwd: str | os.PathLike[str] | None,
                env: Mapping[str, str], check: bool = True) -> subprocess.CompletedProcess:
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.run(list(cmd), cwd=cwd, env=dict(env), stdout=fh, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        tail = Path(log).read_text(errors="replace").replace("\r", "\n").splitlines()[-40:]
        raise SwiftError(f"{what} exited {proc.returncode}; log {log}:\n" + "\n".join(tail))
    return proc
