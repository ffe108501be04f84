"""The paper's supervision ablations (Table 2), end to end through ms-swift's Python API.

For each variant (full, w/o time, w/o explanation, w/o both): `sft_main(SftArguments)` with the recipe's config
(recipes/configs/<recipe>.yaml: the same file `swift sft` reads in the bash recipe), then `infer_main(InferArguments)`
over the test split (recipes/configs/infer.yaml), then `python eval/score.py`; ends with the ablation table, ours
beside the paper's, printed and written to OUT/ablations.md and OUT/ablations.json.

    python recipes/ablations.py --data data/deeptrace                      # Qwen2.5-VL-7B full FT, 1 process
    torchrun --nproc_per_node 8 recipes/ablations.py --data data/deeptrace  # 8 GPUs, DeepSpeed ZeRO-3
    python recipes/ablations.py --data D --model tiny/ --sft-flags "--max_steps 2 --torch_dtype float32" \\
        --infer-flags "--torch_dtype float32 --max_new_tokens 16"          # CPU smoke run with a tiny model

Layout of OUT (default output/ablations/<recipe>): <variant>/ (swift's output_dir with checkpoint-N),
<variant>/predictions-<split>.jsonl, <variant>/metrics.json, ablations.md, ablations.json.
The global batch is the recipe config's GLOBAL_BATCH_SIZE (its paper's), made with gradient accumulation over the
launch's processes (recipes/lib.py batch_plan, the rule the bash recipes use).
The explanation metric needs the LLM judge: used when OPENAI_API_KEY is set, else `--no-judge` is passed (explanation
and overall are then empty). Extra scorer flags: --score-flags.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_cli  # noqa: E402
from common.jsonl import atomic_open, write_json  # noqa: E402
from recipes import paper  # noqa: E402
from recipes.lib import (  # noqa: E402
    VARIANTS,
    apply_env,
    batch_plan,
    config_path,
    find_checkpoint,
    load_config,
    split_file,
    to_argv,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCORER = REPO_ROOT / "eval" / "score.py"
DEFAULT_MODELS = {"qwen2_5_vl": "Qwen/Qwen2.5-VL-7B-Instruct", "videollama3": "ckpt/VideoLLaMA3-7B-native"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ablations.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--data", required=True, help="converter output directory (layout: recipes/README.md)")
    p.add_argument("--recipe", default="qwen2_5_vl_full",
                   help="training config: a name in recipes/configs/ or a YAML path (default qwen2_5_vl_full)")
    p.add_argument("--model", help="base model (default: the recipe's model, e.g. Qwen/Qwen2.5-VL-7B-Instruct)")
    p.add_argument("--output-dir", help="default output/ablations/<recipe>")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated, run in this order (default {','.join(VARIANTS)})")
    p.add_argument("--split", default="test", choices=("val", "test"), help="split to infer and score (default test)")
    p.add_argument("--deepspeed", default="auto",
                   help="zero3, zero2, a JSON file, none; auto = zero3 under torchrun, none otherwise")
    p.add_argument("--sft-flags", default="", metavar="FLAGS",
                   help='extra `swift sft` flags, one string (override the config), e.g. "--max_steps 2"')
    p.add_argument("--infer-flags", default="", metavar="FLAGS", help="extra `swift infer` flags, one string")
    p.add_argument("--score-flags", default="", metavar="FLAGS", help="extra eval/score.py flags, one string")
    p.add_argument("--no-score", action="store_true", help="train and infer only (no eval/score.py)")
    return p


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def log(message: str) -> None:
    if rank() == 0:
        print(f"[ablations] {message}", flush=True)


def parse_swift_args(cls: type, argv: list[str]) -> Any:
    """ms-swift's own argv parsing (what `swift sft/infer` do), refusing unknown flags with one line."""
    from swift.utils import parse_args

    args, rest = parse_args(cls, argv)
    if rest:
        raise UserError(f"unknown {cls.__name__} flags: {' '.join(rest)}")
    return args


def train(argv: list[str], config: Path) -> Path:
    from swift import SftArguments, sft_main

    os.environ["SWIFT_CONFIG_FILE"] = str(config)  # swift copies the config next to the checkpoints (for infer.sh)
    try:
        result = sft_main(parse_swift_args(SftArguments, argv))
    finally:
        os.environ.pop("SWIFT_CONFIG_FILE", None)
    release_training_state()
    ckpt = result.get("last_model_checkpoint") if isinstance(result, dict) else None
    if not ckpt:
        raise UserError(f"swift sft saved no checkpoint (flags: {shlex.join(argv)})")
    return Path(ckpt)


def release_training_state() -> None:
    """Forget the finished training's DeepSpeed settings before the next stage loads a model in this process.

    transformers keeps the training arguments' DeepSpeed config in a module-level weak reference
    (`transformers.integrations.deepspeed`); ms-swift's trainer objects outlive `sft_main` until the garbage
    collector frees them, so under ZeRO-3 the next `from_pretrained` (inference) still sees "ZeRO-3 enabled" and
    partitions the freshly loaded weights to empty tensors (`RuntimeError: weight should have at least three
    dimensions` in the vision tower's first convolution). The next `sft_main` sets its own config again.
    """
    import gc

    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    gc.collect()
    if is_deepspeed_zero3_enabled():  # cannot happen after the unset; a guard against a changed transformers
        raise RuntimeError("DeepSpeed ZeRO-3 is still marked enabled after training")
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def infer(ckpt: Path, data: Path, result: Path, extra: list[str]) -> None:
    from swift import InferArguments, infer_main

    _, flags = load_config("infer")
    kind, path = find_checkpoint(ckpt)
    if rank() == 0:
        result.unlink(missing_ok=True)  # swift appends to an existing result file
    argv = [*to_argv(flags), f"--{kind}", str(path), "--val_dataset", str(data), "--result_path", str(result), *extra]
    infer_main(parse_swift_args(InferArguments, argv))


def score(predictions: Path, references: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    judge = [] if os.environ.get("OPENAI_API_KEY") or "--no-judge" in extra else ["--no-judge"]
    cmd = [sys.executable, str(SCORER), "--task", "deeptrace", "--predictions", str(predictions),
           "--references", str(references), "--out", str(out), *judge, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"eval/score.py failed on {predictions}: {last}")
    import json

    return json.loads(out.read_text(encoding="utf-8"))


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def table(model_type: str, recipe: str, ours: dict[str, dict[str, Any] | None]) -> str:
    paper_rows = paper.TABLE2.get(model_type, {})
    name = paper.MODEL_LABELS.get(model_type, model_type)
    lines = [f"DeeptraceReward supervision ablations: {name}, recipe {recipe} (ours) vs the paper's Table 2 (test set)",
             "", "| run | variant | " + " | ".join(paper.HEADERS) + " |",
             "|---|---|" + "---:|" * len(paper.HEADERS)]
    for variant, metrics in ours.items():
        row = [_fmt(None if metrics is None else metrics.get(k)) for k in paper.METRICS]
        lines.append(f"| ours | {paper.VARIANT_LABELS[variant]} | " + " | ".join(row) + " |")
        if variant in paper_rows:
            row = [_fmt(paper_rows[variant][k]) for k in paper.METRICS]
            lines.append(f"| paper | {paper.VARIANT_LABELS[variant]} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise UserError(f"--variants: unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    config = config_path(args.recipe)
    env, flags = load_config(config)
    recipe = config.stem
    if "external_plugins" in flags:  # configs name plugins relative to the repository root
        plugins = flags["external_plugins"]
        flags["external_plugins"] = [str(REPO_ROOT / p) for p in (plugins if isinstance(plugins, list) else [plugins])]
    model_type = str(flags.get("model_type", ""))
    model = args.model or DEFAULT_MODELS.get(model_type)
    if not model:
        raise UserError(f"--model is required for recipe {recipe}")
    out = Path(args.output_dir or f"output/ablations/{recipe}").resolve()
    try:
        sft_extra, infer_extra, score_extra = (shlex.split(s) for s in (args.sft_flags, args.infer_flags,
                                                                         args.score_flags))
    except ValueError as exc:
        raise UserError(f"cannot split the --*-flags strings: {exc}") from None
    # Every input is checked before the first (long) training starts.
    files = {v: {s: split_file(args.data, v, s) for s in ("train", "val", args.split)} for v in variants}
    scoring = not args.no_score
    if scoring and not SCORER.is_file():
        raise UserError(f"{SCORER} not found: pass --no-score to train and infer only")
    deepspeed = args.deepspeed
    if deepspeed == "auto":
        deepspeed = "zero3" if "WORLD_SIZE" in os.environ else "none"
    ds = [] if deepspeed == "none" else ["--deepspeed", deepspeed]

    # The config's global batch on this launch's processes (torchrun sets WORLD_SIZE and LOCAL_WORLD_SIZE).
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)) or world)
    accumulation, how = batch_plan(config, sft_extra, {**os.environ, "NPROC_PER_NODE": str(local),
                                                       "NNODES": str(max(1, world // local))})
    applied = apply_env(env)
    log(f"recipe {config} (ENV set: {applied or 'none, already in the environment'}); model {model}; output {out}")
    log(how)
    results: dict[str, dict[str, Any] | None] = {}
    summary: dict[str, Any] = {"recipe": recipe, "config": str(config), "model": model, "split": args.split,
                               "variants": {}}
    for v in variants:
        run_dir = out / v
        log(f"{v}: training on {files[v]['train']}")
        sft_argv = [*to_argv(flags), "--model", model, "--dataset", str(files[v]["train"]),
                    "--val_dataset", str(files[v]["val"]), "--output_dir", str(run_dir), *ds,
                    "--gradient_accumulation_steps", str(accumulation), *sft_extra]
        ckpt = train(sft_argv, config)
        predictions = run_dir / f"predictions-{args.split}.jsonl"
        log(f"{v}: inference with {ckpt} on {files[v][args.split]}")
        infer(ckpt, files[v][args.split], predictions, infer_extra)
        entry: dict[str, Any] = {"checkpoint": str(ckpt), "predictions": str(predictions),
                                 "references": str(files[v][args.split]), "metrics": None}
        if scoring and rank() == 0:
            metrics_path = run_dir / "metrics.json"
            entry["metrics"] = score(predictions, files[v][args.split], metrics_path, score_extra)["metrics"]
            entry["metrics_file"] = str(metrics_path)
        results[v] = entry["metrics"]
        summary["variants"][v] = entry
    if rank() != 0:
        return 0
    text = table(model_type, recipe, results)
    summary["paper"] = paper.TABLE2.get(model_type)
    write_json(out / "ablations.json", summary)
    with atomic_open(out / "ablations.md") as fh:
        fh.write(text)
    print(text, end="")
    print(f"written: {out / 'ablations.md'}, {out / 'ablations.json'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
