"""The one registry of evaluation tasks (a task name → the module that owns it) and the task-generic helpers that
`eval/score.py` and `eval/report.py` share.

A task module owns everything about its task:
    NAME: str
    STREAMING: bool (optional)                   True: `score` reads `pairs` once, as they are read from the files
                                                 (an iterator; memory stays flat); otherwise it gets a list
    add_arguments(group) -> None                 its own flags (an argparse argument group)
    OFFLINE: dict                                option values under which `score` calls no API and loads no model
                                                 (the report's own scoring); the judge is off there anyway
    score(pairs, args, *, context) -> Scored     the metrics (what metrics.json holds) and the per-sample rows
    format_table(result) -> str                  the markdown printed by the CLI
    metric_rows(task) -> [(key, title, digits)]  the metrics table's rows, in order
    CHART_METRICS: [(key, title, transform)]     per-category chart panels (the first four present are drawn)
    report_cards(samples, pairs, ctx) -> [card]  one report card per sample, from `score`'s rows (eval/report_cards.py)
`pairs` are the verified (prediction, reference) pairs of `common.join`, in order; `context` is a `ScoreContext` (file
names, the join report and `make_judge()`, which returns a configured `eval.judge.Judge`, or None under --no-judge).
A new benchmark is one new module and one line in TASKS.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from common.argtypes import non_negative_int
from common.errors import UserError
from common.jsonl import iter_jsonl

TASKS: dict[str, str] = {
    "deeptrace": "eval.deeptrace",
    "fakeclue": "eval.fakeclue",
    "dfj-pointwise": "eval.dfj",
    "dfj-pairwise": "eval.dfj",
    "dfj-detect": "eval.dfj",
    "dfj-reason": "eval.dfj",
}


@dataclass
class ScoreContext:
    predictions: str
    references: str
    join: dict[str, int] = field(default_factory=dict)
    make_judge: Callable[[], Any] = lambda: None


class Scored(dict):
    """A task's result — the dict metrics.json holds — with the per-sample rows it was computed from in `.samples`
    (one per pair, in pair order; like lm-eval's --log_samples). The report renders those rows; it never parses or
    scores a generation itself."""

    def __init__(self, result: dict[str, Any], samples: list[Any]):
        super().__init__(result)
        self.samples = samples


def get(name: str) -> ModuleType:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])


def first_task(path: str) -> str | None:
    """meta.task of the first reference line (every line is checked by the task itself)."""
    for _, record in iter_jsonl(path):
        meta = record.get("meta") if isinstance(record, dict) else None
        return meta.get("task") if isinstance(meta, dict) else None
    raise UserError(f"{path}: no references (empty file)")


def task_of(references: str, given: str | None) -> str:
    """The task to score: `given` (--task), else the references' meta.task."""
    if given:
        return given
    name = first_task(references)
    if name is None:
        raise UserError(f"{references}: cannot tell the task (no meta.task on its first line); pass --task")
    if name not in TASKS:
        raise UserError(f"{references}: meta.task {name!r} is not a known task ({', '.join(TASKS)})")
    return name


def add_scoring_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags every task's `score` reads (both CLIs take them)."""
    parser.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                        help="bootstrap replicates for 95%% confidence intervals (0: none; default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--compat", nargs="?", const=True, default=False, metavar="MODE",
                        help="paper-only reading: strict answer formats, no departures; fakeclue: --compat fakevlm, "
                             "the official FakeVLM verdict rule (see eval/README.md)")


def options(module: ModuleType, **values: Any) -> argparse.Namespace:
    """`score`'s options: every shared and task flag at its default, then `values`."""
    parser = argparse.ArgumentParser(add_help=False)
    add_scoring_arguments(parser)
    module.add_arguments(parser.add_argument_group())
    args = parser.parse_args([])
    for key, value in values.items():
        setattr(args, key, value)
    return args
