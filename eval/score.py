"""Score `swift infer` predictions against converter references; print a markdown table, write JSON.

    python eval/score.py --task deeptrace --predictions preds.jsonl --references test.jsonl [--out metrics.json]

Predictions are joined to references by line order and the join is verified (common/join.py). `--task` may be
omitted when the references' meta.task names it. Task-specific flags: `--task NAME --help`. See eval/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.argtypes import fraction, non_negative_int, optional_float, positive_float, positive_int  # noqa: E402
from common.errors import UserError, run_cli  # noqa: E402
from common.join import iter_pairs  # noqa: E402
from common.jsonl import write_json  # noqa: E402
from common.outputs import check_output_file  # noqa: E402
from eval import judging, tasks  # noqa: E402
from eval.judge import DEFAULT_MODEL, Judge, JudgeError  # noqa: E402


def build_parser(task_module=None, *, full: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="score.py", add_help=full, description=__doc__.split("\n\n")[0],
        epilog=f"tasks: {', '.join(sorted(tasks.TASKS))}. Task-specific flags: --task NAME --help.")
    parser.add_argument("--task", choices=sorted(tasks.TASKS), help="default: the references' meta.task")
    parser.add_argument("--predictions", required=full, metavar="JSONL", help="swift infer --result_path output")
    parser.add_argument("--references", required=full, metavar="JSONL",
                        help="the converter's JSONL the predictions were generated from (same order)")
    parser.add_argument("--out", metavar="JSON", help="write the metrics JSON file here (atomically)")
    parser.add_argument("--report", metavar="DIR", help="also write the HTML report there (eval/report.py): a new or "
                                                        "empty folder, or one an earlier report wrote")
    tasks.add_scoring_arguments(parser)
    judge = parser.add_argument_group("LLM judge (any OpenAI-compatible endpoint; key only from $OPENAI_API_KEY)")
    judge.add_argument("--no-judge", action="store_true", help="skip the judge: judge-based metrics are null")
    judge.add_argument("--judge-model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL} (the paper's)")
    judge.add_argument("--judge-base-url", metavar="URL", help="default: $OPENAI_BASE_URL, else api.openai.com")
    judge.add_argument("--judge-cache", metavar="JSONL",
                       help="append-only cache of the judge's answers (never of failures: a re-run asks only the calls "
                            "without an answer); default: <predictions>.judge.jsonl")
    judge.add_argument("--judge-concurrency", type=positive_int, default=16, metavar="N", help="default 16")
    judge.add_argument("--judge-retries", type=non_negative_int, default=6, metavar="N",
                       help="retries per call on 429/5xx/timeouts/dropped connections (default 6)")
    judge.add_argument("--judge-timeout", type=positive_float, default=60.0, metavar="S",
                       help="seconds per request (default 60)")
    judge.add_argument("--judge-budget", type=non_negative_int, default=None, metavar="N",
                       help="at most N HTTP requests in this run, retries included (default: unlimited)")
    judge.add_argument("--judge-temperature", type=optional_float, default=0.0, metavar="T|none",
                       help="sampling temperature (default 0); 'none' sends none (models that accept only their "
                            "default)")
    judge.add_argument("--judge-max-tokens", type=positive_int, default=None, metavar="N",
                       help="max_tokens of each judge reply (default: not sent)")
    judge.add_argument("--judge-min-coverage", type=fraction, default=judging.MIN_COVERAGE, metavar="F",
                       help="when judge calls fail, judge-based metrics are computed over the judged samples and "
                            "marked partial, or null if fewer than F of the samples that need them were judged "
                            f"(default {judging.MIN_COVERAGE:g}); a re-run retries only the failed calls")
    judge.add_argument("--judge-strict", action="store_true",
                       help="all or nothing: any failed judge call stops the run and nothing is written")
    if task_module is not None:
        task_module.add_arguments(parser.add_argument_group(f"{task_module.NAME} options"))
    return parser


def judge_cache_path(args: argparse.Namespace) -> str:
    return args.judge_cache or str(Path(args.predictions).with_suffix("")) + ".judge.jsonl"


def make_judge_factory(args: argparse.Namespace):
    def make() -> Judge | None:
        if args.no_judge:
            return None
        return Judge(args.judge_model, base_url=args.judge_base_url, cache_path=judge_cache_path(args),
                     concurrency=args.judge_concurrency, max_retries=args.judge_retries, timeout=args.judge_timeout,
                     budget=args.judge_budget, temperature=args.judge_temperature, max_tokens=args.judge_max_tokens)

    return make


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre, _ = build_parser(full=False).parse_known_args(argv)
    name = pre.task
    if name is None and pre.references and not {"-h", "--help"} & set(argv):
        name = tasks.task_of(pre.references, None)
    module = tasks.get(name) if name else None
    args = build_parser(module).parse_args(argv)
    if args.out:  # refused before the work (and the judge's calls), not after it
        check_output_file(args.out, "--out", "metrics.json")
    if args.report:
        from eval import report

        report.check_out(args.report, "--report")
    verified: dict[str, int] = {}
    pairs = iter_pairs(args.predictions, args.references, verified)  # verified while the task reads them
    if args.report or not getattr(module, "STREAMING", False):
        pairs = list(pairs)
    context = tasks.ScoreContext(predictions=args.predictions, references=args.references, join=verified,
                                 make_judge=make_judge_factory(args))
    try:
        scored = module.score(pairs, args, context=context)
    except JudgeError as exc:
        raise UserError(f"judge: {exc}") from None
    if args.out:
        write_json(args.out, dict(scored))
    if args.report:
        report.write(Path(args.report), pairs, scored, task=scored.get("task") or name,
                     predictions=args.predictions, references=args.references,
                     settings=report.Settings(judge_cache=args.judge_cache, judge_model=args.judge_model))
    print(module.format_table(scored))
    warnings = [judging.warning(scored.get("judge")), *(scored.get("warnings") or ())]
    for warning in filter(None, warnings):
        print(f"score.py: warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
