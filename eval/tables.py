"""Number and interval cells of the metric tables, one spelling for every task (eval/deeptrace.py, fakeclue.py,
dfj.py, the HTML report): `–` where there is no value."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals; `–` for None (a metric that does not apply or was not computed)."""
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_ci(interval: Any, digits: int = 1) -> str:
    """A bootstrap interval `[low, high]` as `low–high`; `–` for anything else (no bootstrap, too few samples)."""
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and all(
            isinstance(v, (int, float)) for v in interval):
        return f"{interval[0]:.{digits}f}–{interval[1]:.{digits}f}"
    return "–"
