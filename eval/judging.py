"""What a task does with its judge calls, so that the judge never blocks the metrics that do not need it.

A task hands its distinct judge requests to `run`: calls that succeeded give scores (an unparseable reply scores the
task's worst value), calls that failed (a 400 from a content filter, a malformed 200, blank replies, retries or
budget exhausted) are counted with their reasons and left out. The task computes its judge-based metrics over the
samples that have a score, and `coverage` says whether they may be reported: complete, partial (at least
`MIN_COVERAGE` of the samples that need the judge have a score: reported, marked partial) or insufficient (below it:
reported as null). Failures are never cached, so a re-run of the same command asks only the failed calls again.
`strict=True` (--judge-strict) keeps all-or-nothing: any failed call stops the run and nothing is written.

Texts sent to a judge are capped at `MAX_TEXT_CHARS` characters each (`cap`), so that a runaway generation is not
sent whole; the number of requests with a cut text is reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import UserError
from eval.judge import Judge, JudgeRequest

MIN_COVERAGE = 0.9  # judge-based metrics are null when fewer of the samples that need the judge have a score
MAX_TEXT_CHARS = 2000  # per text sent to a judge (the paper's explanations are a few hundred characters)
MAX_REASONS = 10  # distinct failure reasons kept in metrics.json (the rest are summed under "other")


def cap(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_cut(text: str | None, limit: int = MAX_TEXT_CHARS) -> bool:
    return text is not None and len(text) > limit


@dataclass
class Outcome:
    scores: dict[Hashable, Any]  # item -> score, for every item whose call succeeded
    failed: dict[Hashable, str]  # item -> why its call failed
    unparseable: int  # items whose replies were rejected twice (scored `worst`)
    report: dict[str, Any]  # the judge's part of metrics.json


def run(judge: Judge, items: Mapping[Hashable, JudgeRequest], parse: Callable[[str], Any], *, worst: Any,
        strict: bool = False, what: str = "judge calls", desc: str = "judge") -> Outcome:
    """Judge every item once (cached replies first); failed items are left out of `scores`, never guessed."""
    keys = list(items)
    results = judge.run([items[k] for k in keys], parse, desc=desc)
    failed = {k: r.error or "failed" for k, r in zip(keys, results, strict=True) if r.status == "failed"}
    if failed and strict:
        raise UserError(f"judge: {len(failed)} of {len(keys)} {what} failed (first: {next(iter(failed.values()))}); "
                        f"replies received so far are cached in {judge.cache.path} - re-run the same command to "
                        f"resume (without --judge-strict the metrics are written, judge-based ones partial or null)")
    scores = {k: r.value if r.status == "ok" else worst
              for k, r in zip(keys, results, strict=True) if r.status != "failed"}
    reasons = Counter(failed.values()).most_common()
    failures = dict(reasons[:MAX_REASONS])
    if len(reasons) > MAX_REASONS:
        failures["other"] = sum(n for _, n in reasons[MAX_REASONS:])
    report = {"model": judge.model, "params": dict(judge.params),
              "cache": str(judge.cache.path) if judge.cache.path else None, **judge.stats.as_dict(),
              "failures": failures, "max_text_chars": MAX_TEXT_CHARS}
    unparseable = sum(r.status == "unparseable" for r in results)
    return Outcome(scores, failed, unparseable, report)


def coverage(needed: int, missing: int, min_coverage: float = MIN_COVERAGE) -> dict[str, Any]:
    """How many of the `needed` samples of a judge-based metric have a score, and whether it may be reported.

    status: "complete" (all), "partial" (>= min_coverage: reported over the scored samples, marked partial) or
    "insufficient" (below, or none scored: reported as null).
    """
    scored = needed - missing
    fraction = scored / needed if needed else 1.0
    status = "complete" if missing == 0 else "partial" if scored and fraction >= min_coverage else "insufficient"
    return {"status": status, "needed": needed, "scored": scored, "failed": missing, "fraction": round(fraction, 4),
            "min_coverage": min_coverage}


def warning(report: dict[str, Any] | None) -> str | None:
    """One line for the console when judge calls failed (None when every call succeeded)."""
    if not report or not report.get("failed"):
        return None
    cov = report.get("coverage") or {}
    metrics = " and ".join(report.get("metrics") or ("the judge-based metrics",))
    reasons = "; ".join(f"{why} ({n})" for why, n in (report.get("failures") or {}).items())
    if cov.get("status") == "insufficient":
        state = (f"{metrics}: null - only {cov['scored']} of {cov['needed']} samples judged, below "
                 f"--judge-min-coverage {cov['min_coverage']:g}")
    elif cov.get("status") == "partial":
        state = f"{metrics}: PARTIAL, over {cov['scored']} of {cov['needed']} samples"
    else:
        state = f"{metrics}: complete (the failed calls were not needed for them)"
    return (f"judge: {report['failed']} of {report['items']} calls failed ({reasons}); {state}. Re-run the same "
            f"command to retry only the failed calls (answers are cached in {report.get('cache')})")
