"""What the recipes share, defined once: reading a recipe config, finding a variant's data files, finding a checkpoint.

Used by the bash recipes (through recipes/common.sh, which calls this file's CLI) and by the Python recipes
(recipes/ablations.py imports it), so both read the same files the same way.

    python recipes/lib.py split DATA VARIANT SPLIT    # prints the JSONL path of SPLIT (train|val|test) for VARIANT
    python recipes/lib.py env CONFIG [--trained]      # prints `export K=V` for the config's ENV not already set
                                                      # (--trained: what the model saw, without GLOBAL_BATCH_SIZE)
    python recipes/lib.py checkpoint PATH             # prints `adapters PATH` or `model PATH` (newest checkpoint-N)
    python recipes/lib.py train-config PATH           # prints the training config swift kept beside a checkpoint
    python recipes/lib.py flags CONFIG                # prints the config's flags as argv, one item per line
    python recipes/lib.py start CKPT TUNER [MODEL]    # prints the `swift rlhf` flags that start from CKPT, one per line
    python recipes/lib.py solutions SRC DST           # SRC's rows with `solution` = their answer (for RL rewards)
    python recipes/lib.py batch CONFIG [FLAG ...]     # prints the gradient accumulation steps for GLOBAL_BATCH_SIZE
                                                      # (GRPO configs: also checks the generation round)

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
RUN_ENV = (GLOBAL_BATCH_VAR,)  # ENV entries that shape a training run, not the inputs the model was trained on


def trained_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a training config's ENV that says what the model saw (frames, pixel budgets), for a later stage
    that starts from its checkpoint (inference, GRPO): the run's own settings (RUN_ENV) stay with the run."""
    return {k: v for k, v in env.items() if k not in RUN_ENV}


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


def generation_round(per_step: int, accumulation: int, num_generations: int,
                     generation_batch_size: int | None = None, steps_per_generation: int | None = None, *,
                     batch_setting: str = GLOBAL_BATCH_VAR) -> int:
    """Completions GRPO samples per generation round, derived as ms-swift 4.6 derives it, or a UserError where
    swift would stop (swift/rlhf_trainers/args_mixin.py `_init_generation_batch_params`), so that the recipe
    refuses with one line before swift starts.

    per_step = per-device batch x processes (GRPO's per-device batch counts completions). By default a round is one
    optimizer step (steps_per_generation = accumulation steps): the round is the global batch. Each prompt's
    num_generations completions are one group (advantages are normalised within it), so a round holds whole groups.
    `batch_setting` names what sets the global batch, for the error (GLOBAL_BATCH_SIZE or an explicit accumulation)."""
    if steps_per_generation is None:
        if generation_batch_size is None:
            steps_per_generation = accumulation
        elif generation_batch_size % per_step:
            raise UserError(f"--generation_batch_size {generation_batch_size} is not a multiple of per-device batch x "
                            f"processes = {per_step}")
        else:
            steps_per_generation = generation_batch_size // per_step
    elif generation_batch_size is not None and generation_batch_size != per_step * steps_per_generation:
        raise UserError(f"--generation_batch_size {generation_batch_size} is not per-device batch x processes x "
                        f"--steps_per_generation = {per_step * steps_per_generation}")
    size = per_step * steps_per_generation
    if num_generations > 1 and size % num_generations:
        how = ("the global batch" if size == per_step * accumulation
               else f"{per_step} per step x {steps_per_generation} step(s) per generation")
        raise UserError(f"GRPO generation round of {size} completions ({how}) is not a multiple of "
                        f"--num_generations {num_generations}: each prompt's {num_generations} completions must fall "
                        f"in one round; change {batch_setting}, the number of GPUs or --num_generations")
    return size


def _setting(argv: Sequence[str], flags: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A swift flag's value for this run: the last one in argv, else the config's, else `default`."""
    value = flag_value(argv, name)
    return flags.get(name, default) if value is None else value


def batch_plan(config: str | os.PathLike[str], argv: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(gradient accumulation steps, one line saying how the global batch is made) for a training run.

    Inputs, in the recipes' precedence: the global batch from $GLOBAL_BATCH_SIZE, else the config's ENV; the per-device
    batch from the last --per_device_train_batch_size in argv, else the config; NPROC_PER_NODE and NNODES from the
    environment (1 when unset). An explicit --gradient_accumulation_steps in argv wins (the global batch is then
    whatever it makes, and the line says so). GRPO (`rlhf_type: grpo`): the batches count completions, and the
    generation round must also hold whole groups of num_generations (`generation_round`)."""
    environ = os.environ if environ is None else environ
    env, flags = load_config(config)
    per_device = _positive_int(_setting(argv, flags, "per_device_train_batch_size", 1), "--per_device_train_batch_size")
    nproc = _positive_int(environ.get("NPROC_PER_NODE") or 1, "NPROC_PER_NODE")
    nnodes = _positive_int(environ.get("NNODES") or 1, "NNODES")
    shape = f"{per_device} per device x {nproc} process(es) x {nnodes} node(s)"
    given = flag_value(argv, "gradient_accumulation_steps")
    if given is not None:
        steps = _positive_int(given, "--gradient_accumulation_steps")
        line = (f"global batch {per_device * nproc * nnodes * steps} = {shape} x {steps} accumulation "
                f"step(s) (--gradient_accumulation_steps given: {GLOBAL_BATCH_VAR} not applied)")
    else:
        source = GLOBAL_BATCH_VAR if environ.get(GLOBAL_BATCH_VAR) else f"{Path(config).name} ENV"
        raw = environ.get(GLOBAL_BATCH_VAR) or env.get(GLOBAL_BATCH_VAR)
        if raw is None:
            raise UserError(f"{config_path(config)}: no {GLOBAL_BATCH_VAR} in ENV and none in the environment")
        global_batch = _positive_int(raw, GLOBAL_BATCH_VAR)
        steps = gradient_accumulation(global_batch, per_device, nproc, nnodes)
        line = f"global batch {global_batch} ({source}) = {shape} x {steps} accumulation step(s)"
    if _setting(argv, flags, "rlhf_type") == "grpo":
        optional = {name: _positive_int(value, f"--{name}") for name in ("generation_batch_size",
                                                                          "steps_per_generation")
                    if (value := _setting(argv, flags, name)) is not None}
        group = _positive_int(_setting(argv, flags, "num_generations", 8), "--num_generations")  # swift's default: 8
        size = generation_round(per_device * nproc * nnodes, steps, group, **optional,
                                batch_setting="--gradient_accumulation_steps" if given else GLOBAL_BATCH_VAR)
        line += f"; GRPO counts completions: {size // group} prompt(s) x {group} generations per generation round"
    return steps, line


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


def train_config(path: str | os.PathLike[str]) -> Path | None:
    """The recipe config ms-swift copied next to a checkpoint (`swift sft CONFIG.yaml` keeps it in the output
    directory): the first *.yaml in the checkpoint directory or its parent, else None. Its ENV (frame sampling,
    pixel budgets) is what the model was trained with."""
    root = Path(path)
    if not root.is_dir():
        return None
    for directory in (root, root.parent):
        found = sorted(directory.glob("*.yaml"))
        if found:
            return found[0].resolve()
    return None


def _base_model(adapter: Path) -> str:
    """The base model a LoRA checkpoint was trained on (`model` in the args.json swift saved beside it)."""
    args_file = adapter / "args.json"
    try:
        model = json.loads(args_file.read_text(encoding="utf-8")).get("model")
    except (OSError, json.JSONDecodeError, AttributeError):
        model = None
    if not isinstance(model, str) or not model:
        raise UserError(f"{adapter} is a LoRA adapter without a base model in {args_file}; set MODEL to its base model")
    return model


def start_flags(ckpt: str | os.PathLike[str], tuner: str, model: str | None = None) -> list[str]:
    """`swift rlhf` flags that start RL from an SFT checkpoint (found as `find_checkpoint` finds it).

    - LoRA SFT checkpoint, TUNER=lora: `--model BASE --adapters CKPT --ref_adapters CKPT`: RL keeps training the SFT
      adapter; the reference model (KL term) is the base with the SFT adapter (ms-swift's documented way).
    - full SFT checkpoint (or a base model), TUNER=lora: `--model CKPT`; new LoRA weights, the reference is CKPT.
    - full SFT checkpoint, TUNER=full: `--model CKPT`; the reference is a frozen copy of CKPT.
    - LoRA SFT checkpoint, TUNER=full: refused (merge the adapter first).
    BASE is MODEL when given, else the base model recorded in the adapter's args.json.
    """
    if tuner not in ("lora", "full"):
        raise UserError(f"unknown TUNER {tuner!r}; choose lora or full")
    kind, path = find_checkpoint(ckpt)
    if kind == "model":
        return ["--model", str(path)]
    if tuner == "full":
        raise UserError(f"{path} is a LoRA adapter: full RL needs a full model; merge it first "
                        f"(swift export --adapters {path} --merge_lora true) and pass the merged directory")
    base = model or _base_model(Path(path))
    return ["--model", base, "--adapters", str(path), "--ref_adapters", str(path)]


def with_solutions(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """SRC's rows, each with `solution` = its last assistant message (the reference answer), written to DST.

    GRPO removes a row's answer before sampling completions and passes the other columns to the reward functions;
    `solution` (ms-swift's name for a reward's reference column) keeps the answer there, so that a reward scores
    against exactly what the scorer reads from the SFT row. Streams; rows without an answer are copied as they are."""
    from common.join import assistant_text
    from common.jsonl import iter_jsonl, write_jsonl

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UserError(f"{dst}: would overwrite the source data")

    def rows():
        for _, row in iter_jsonl(src):
            answer = assistant_text(row) if isinstance(row, dict) else None
            yield {**row, "solution": answer} if answer is not None else row

    dst.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(dst, rows())


def _lines(items: list[str], what: str) -> str:
    for item in items:
        if "\n" in item or "\r" in item:
            raise UserError(f"{what}: a value contains a line break ({item[:60]!r}); recipes pass flags one per line")
    return "\n".join(items)


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
    p.add_argument("--trained", action="store_true",
                   help="only what the model was trained on (frames, pixels): a checkpoint's training config, read by "
                        "a later stage; without the run's " + ", ".join(RUN_ENV))
    p = sub.add_parser("checkpoint", help="print `adapters PATH` or `model PATH`")
    p.add_argument("path")
    p = sub.add_parser("train-config", help="print the training config kept beside a checkpoint (nothing if none)")
    p.add_argument("path")
    p = sub.add_parser("flags", help="print a config's flags as argv, one item per line")
    p.add_argument("config")
    p = sub.add_parser("start", help="print the `swift rlhf` flags that start from an SFT checkpoint, one per line")
    p.add_argument("ckpt")
    p.add_argument("tuner")
    p.add_argument("model", nargs="?", default=None)
    p = sub.add_parser("solutions", help="copy a JSONL, adding `solution` = each row's answer (for RL rewards)")
    p.add_argument("src")
    p.add_argument("dst")
    p = sub.add_parser("batch", help="print the gradient accumulation steps (line 1) and how the global batch is "
                                     "made (line 2), from GLOBAL_BATCH_SIZE, NPROC_PER_NODE, NNODES and the flags")
    p.add_argument("config")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="the swift flags the recipe passes on (\"$@\")")
    args = parser.parse_args(argv)
    if args.command == "split":
        print(split_file(args.data, args.variant, args.split))
    elif args.command == "env":
        env, _ = load_config(args.config)
        for key, value in (trained_env(env) if args.trained else env).items():
            if key not in os.environ:
                print(f"export {key}={shlex.quote(value)}")
    elif args.command == "batch":
        steps, how = batch_plan(args.config, args.flags)
        print(steps)
        print(how)
    elif args.command == "checkpoint":
        kind, path = find_checkpoint(args.path)
        print(kind, path)
    elif args.command == "train-config":
        found = train_config(args.path)
        if found:
            print(found)
    elif args.command == "flags":
        print(_lines(to_argv(load_config(args.config)[1]), str(config_path(args.config))))
    elif args.command == "start":
        print(_lines(start_flags(args.ckpt, args.tuner, args.model or None), args.ckpt))
    else:
        with_solutions(args.src, args.dst)
        print(args.dst)
    return 0


if __name__ == "__main__":
    run_cli(main)
