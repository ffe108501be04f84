"""Benchmark harness: every case is timed against a baseline measured in the same run, and reported as a ratio.

A benchmark module (`bench/bench_*.py`) defines `cases(scale: float) -> list[Case]`. A `Case` pairs a baseline
callable with a candidate callable doing the same work; the harness runs each `repeat` times (after one warm-up),
takes the median wall time, measures peak Python heap (tracemalloc) on one extra run, and prints
`candidate / baseline`. Absolute seconds depend on the machine; the ratio is what a change is judged by.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    baseline: Callable[[], object]
    candidate: Callable[[], object]
    baseline_label: str = "baseline"
    note: str = ""
    units: int = 0  # work items per call, to report a rate (0: none)
    ideal_s: float | None = None  # a theoretical best time, reported as ideal / candidate (e.g. latency-bound work)
    # Measures the timed runs cannot give (e.g. the memory of worker processes, which tracemalloc does not see):
    # called once after them, reported under the table
    extra: Callable[[], dict[str, float]] | None = None


@dataclass
class Result:
    name: str
    baseline_s: float
    candidate_s: float
    baseline_peak_mb: float
    candidate_peak_mb: float
    units: int = 0
    ideal_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.candidate_s / self.baseline_s if self.baseline_s > 0 else float("inf")


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _peak_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run_case(case: Case, repeat: int) -> Result:
    return Result(case.name, _time(case.baseline, repeat), _time(case.candidate, repeat),
                  _peak_mb(case.baseline), _peak_mb(case.candidate), case.units, case.ideal_s,
                  case.extra() if case.extra else {})


def table(results: list[Result]) -> str:
    lines = ["| case | baseline s | candidate s | ratio | rate (items/s) | of ideal | peak MB base / cand |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rate = f"{r.units / r.candidate_s:,.0f}" if r.units and r.candidate_s > 0 else "-"
        ideal = f"{r.ideal_s / r.candidate_s:.0%}" if r.ideal_s and r.candidate_s > 0 else "-"
        lines.append(f"| {r.name} | {r.baseline_s:.4f} | {r.candidate_s:.4f} | {r.ratio:.2f}x | {rate} | {ideal} | "
                     f"{r.baseline_peak_mb:.2f} / {r.candidate_peak_mb:.2f} |")
    for r in results:
        if r.extra:
            lines.append(f"\n{r.name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in r.extra.items()))
    return "\n".join(lines)
