"""Task registry for `eval/score.py`: a task name → the module that scores it.

A task module provides:
    NAME: str
    add_arguments(group) -> None                      its own flags (an argparse argument group)
    score(pairs, args, *, context) -> dict            {"task": NAME, "metrics": {...}, "counts": {...}, ...}
    format_table(result) -> str                       the markdown printed by the CLI
`pairs` are the verified (prediction, reference) pairs of `eval.join`; `context` is a `ScoreContext` (file names, the
join report and `make_judge()`, which returns a configured `eval.judge.Judge`, or None under --no-judge).
A new benchmark (FakeClue, DeepfakeJudge, ...) is one new module and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from common.errors import UserError

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


def get(name: str) -> ModuleType:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])
