"""What the recipes share, defined once: reading a recipe config, finding a variant's data files, finding a checkpoint.

Used by the bash recipes (through recipes/common.sh, which calls this file's CLI) and by the Python recipes
(recipes/ablations.py imports it), so both read the same files the same way.

    python recipes/lib.py split DATA VARIANT SPLIT    # prints the JSONL path of SPLIT (train|val|test) for VARIANT
    python recipes/lib.py env CONFIG                  # prints `export K=V` for the config's ENV not already set
    python recipes/lib.py checkpoint PATH             # prints `adapters PATH` or `model PATH` (newest checkpoint-N)
    python recipes/lib.py batch CONFIG [FLAG ...]     # prints the gradient accumulation steps for GLOBAL_BATCH_SIZE

Data layout (what converters/*_to_swift.py write; see recipes/README.md "Data layout"):
    DATA/<variant>/{train,val,test}.jsonl   converter run with --variant all (one sub-directory per variant)
    DATA/{train,val,test}.jsonl             converter run with one --variant; DATA/stats.json names it
                                            ("variant": ...); without stats.json it is taken as `full`
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_cli  # noqa: E402

RECIPES_DIR = Path(__file__).resolve().parent
CONFIG_DIR = RECIPES_DIR / "configs"
VARIANTS = ("full", "no_time", "no_explanation", "no_time_no_explanation")  # = prompts.deeptrace.VARIANTS
SPLITS = ("train", "val", "test")


# --- configs --------------------------------------------------------------------------------------------------

def config_path(name: str | os.PathLike[str]) -> Path:
    """A config file, or the name of one in recipes/configs/ (`qwen2_5_vl_full` -> configs/qwen2_5_vl_full.yaml)."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"config not found: {path}")
    return path.resolve()


def load_config(name: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """(ENV, flags) of a recipe config: the YAML `swift sft CONFIG.yaml` reads (swift/cli/main.py parse_yaml_args)."""
    import yaml

    path = config_path(name)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping of swift flags, got {type(config).__name__}")
    env = config.pop("ENV", None) or {}
    if not isinstance(env, dict):
        raise UserError(f"{path}: ENV must be a mapping of environment variables")
    return {str(k): str(v) for k, v in env.items()}, config


def to_argv(flags: Mapping[str, Any]) -> list[str]:
    """Flags as `swift` argv, exactly as ms-swift expands a YAML config (lists = multi-value flags, dicts = JSON)."""
    argv: list[str] = []
    for key, value in flags.items():
        argv.append(f"--{key}")
        if isinstance(value, list):
            argv += [str(v) for v in value]
        elif isinstance(value, dict):
            argv.append(json.dumps(value, ensure_ascii=False))
        else:
            argv.append(str(value))
    return argv


def apply_env(env: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the config's ENV where not already set (ms-swift's rule); returns what was set."""
    environ = os.environ if environ is None else environ
    applied = {k: v for k, v in env.items() if k not in environ}
    environ.update(applied)
    return applied


# --- global batch ---------------------------------------------------------------------------------------------

GLOBAL_BATCH_VAR = "GLOBAL_BATCH_SIZE"  # set by each training config's ENV (its paper's global batch)


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of the last `--flag V` / `--flag=V` in argv (later flags win in swift, as here), or None."""
    value = None
    for i, word in enumerate(argv):
        if word == f"--{flag}" and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(f"--{flag}="):
            value = word.split("=", 1)[1]
    return value


def _positive_int(text: object, what: str) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise UserError(f"{what} must be a whole number, got {text!r}") from None
    if value < 1:
        raise UserError(f"{what} must be at least 1, got {value}")
    return value


def gradient_accumulation(global_batch: int, per_device: int, nproc_per_node: int, nnodes: int = 1) -> int:
    """Accumulation steps that make per-device batch x processes x nodes x steps = the global batch, or a UserError.

    The one rule for every recipe (bash scripts through `lib.py batch`, recipes/ablations.py directly): a recipe's
    global batch is its paper's, whatever the number of GPUs and nodes."""
    per_step = per_device * nproc_per_node * nnodes
    if global_batch % per_step:
        raise UserError(
            f"{GLOBAL_BATCH_VAR}={global_batch} is not a multiple of per-device batch {per_device} x "
            f"NPROC_PER_NODE={nproc_per_node} x NNODES={nnodes} = {per_step}: change "
            f"--per_device_train_batch_size, the number of GPUs or {GLOBAL_BATCH_VAR}")
    return global_batch // per_step


def batch_plan(config: str | os.PathLike[str], argv: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(gradient accumulation steps, one line saying how the global batch is made) for a training run.

    Inputs, in the recipes' precedence: the global batch from $GLOBAL_BATCH_SIZE, else the config's ENV; the per-device
    batch from the last --per_device_train_batch_size in argv, else the config; NPROC_PER_NODE and NNODES from the
    environment (1 when unset). An explicit --gradient_accumulation_steps in argv wins (the global batch is then
    whatever it makes, and the line says so)."""
    environ = os.environ if environ is None else environ
    env, flags = load_config(config)
    per_device = _positive_int(flag_value(argv, "per_device_train_batch_size")
                               or flags.get("per_device_train_batch_size", 1), "--per_device_train_batch_size")
    nproc = _positive_int(environ.get("NPROC_PER_NODE") or 1, "NPROC_PER_NODE")
    nnodes = _positive_int(environ.get("NNODES") or 1, "NNODES")
    shape = f"{per_device} per device x {nproc} process(es) x {nnodes} node(s)"
    given = flag_value(argv, "gradient_accumulation_steps")
    if given is not None:
        steps = _positive_int(given, "--gradient_accumulation_steps")
        return steps, (f"global batch {per_device * nproc * nnodes * steps} = {shape} x {steps} accumulation "
                       f"step(s) (--gradient_accumulation_steps given: {GLOBAL_BATCH_VAR} not applied)")
    source = GLOBAL_BATCH_VAR if environ.get(GLOBAL_BATCH_VAR) else f"{Path(config).name} ENV"
    raw = environ.get(GLOBAL_BATCH_VAR) or env.get(GLOBAL_BATCH_VAR)
    if raw is None:
        raise UserError(f"{config_path(config)}: no {GLOBAL_BATCH_VAR} in ENV and none in the environment")
    global_batch = _positive_int(raw, GLOBAL_BATCH_VAR)
    steps = gradient_accumulation(global_batch, per_device, nproc, nnodes)
    return steps, f"global batch {global_batch} ({source}) = {shape} x {steps} accumulation step(s)"


# --- data -----------------------------------------------------------------------------------------------------

def split_file(data: str | os.PathLike[str], variant: str, split: str) -> Path:
    """The JSONL of `split` for supervision `variant` in a converter output directory (layout: module docstring)."""
    if variant not in VARIANTS:
        raise UserError(f"unknown VARIANT {variant!r}; choose from {', '.join(VARIANTS)}")
    if split not in SPLITS:
        raise UserError(f"unknown SPLIT {split!r}; choose from {', '.join(SPLITS)}")
    root = Path(data)
    if not root.is_dir():
        raise UserError(f"DATA directory not found: {root} (convert first: converters/*_to_swift.py --out DIR)")
    sub = root / variant
    if sub.is_dir():
        path = sub / f"{split}.jsonl"
        if not path.is_file():
            raise UserError(f"{split} file not found: {path}")
        return path.resolve()
    path = root / f"{split}.jsonl"
    found = None
    stats = root / "stats.json"
    if stats.is_file():
        try:
            found = json.loads(stats.read_text(encoding="utf-8")).get("variant")
        except (json.JSONDecodeError, AttributeError):
            raise UserError(f"{stats}: not a JSON object") from None
    if (found or "full") != variant or not path.is_file():
        have = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name in VARIANTS)
        if have:
            what = f"variant directories {', '.join(have)}"
        elif path.is_file():
            what = f"{root}/*.jsonl of variant {found or 'full'}"
        else:
            what = f"no {path}"
        raise UserError(f"no data for VARIANT={variant} in {root}: expected {sub}/ (converter --variant all); "
                        f"found {what}")
    return path.resolve()


# --- checkpoints ----------------------------------------------------------------------------------------------

def _step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def find_checkpoint(path: str | os.PathLike[str]) -> tuple[str, Path | str]:
    """("adapters" | "model", checkpoint) for `swift infer`.

    `path` may be a checkpoint (LoRA adapter or full model), a training output directory (the newest
    `checkpoint-N` below it is used, also inside ms-swift's `vN-date` run directories), or a model id / base model
    directory (zero-shot inference).
    """
    root = Path(path)
    if not root.exists():
        text = str(path)
        if text.startswith(("/", ".", "~")) or text.count("/") != 1:  # not a hub id like Qwen/Qwen2.5-VL-7B-Instruct
            raise UserError(f"checkpoint not found: {path}")
        return "model", text
    if not ((root / "adapter_config.json").is_file() or (root / "config.json").is_file()):
        candidates = [p for p in root.rglob("checkpoint-*") if p.is_dir() and _step(p) >= 0]
        if not candidates:
            raise UserError(f"no checkpoint in {root}: expected a checkpoint directory or checkpoint-N below it")
        root = max(candidates, key=lambda p: (p.stat().st_mtime, _step(p)))
    kind = "adapters" if (root / "adapter_config.json").is_file() else "model"
    return kind, root.resolve()


# --- CLI for recipes/common.sh ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lib.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split", help="print the JSONL of a split for a variant")
    p.add_argument("data")
    p.add_argument("variant")
    p.add_argument("split")
    p = sub.add_parser("env", help="print `export K=V` lines for the config's ENV that are not already set")
    p.add_argument("config")
    p = sub.add_parser("checkpoint", help="print `adapters PATH` or `model PATH`")
    p.add_argument("path")
    p = sub.add_parser("batch", help="print the gradient accumulation steps (line 1) and how the global batch is "
                                     "made (line 2), from GLOBAL_BATCH_SIZE, NPROC_PER_NODE, NNODES and the flags")
    p.add_argument("config")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="the swift flags the recipe passes on (\"$@\")")
    args = parser.parse_args(argv)
    if args.command == "split":
        print(split_file(args.data, args.variant, args.split))
    elif args.command == "env":
        env, _ = load_config(args.config)
        for key, value in env.items():
            if key not in os.environ:
                print(f"export {key}={shlex.quote(value)}")
    elif args.command == "batch":
        steps, how = batch_plan(args.config, args.flags)
        print(steps)
        print(how)
    else:
        kind, path = find_checkpoint(args.path)
        print(kind, path)
    return 0


if __name__ == "__main__":
    run_cli(main)
