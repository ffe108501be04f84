"""DeeptraceReward scoring (paper Table 2; SPEC §4): parse, judge explanations, aggregate. See eval/README.md.

`metrics` is the paper's per-sample protocol. Everything of ours is reported beside it and never changes it:
`per_video` (each video once, each prediction scored against the trace of its video that it matches best),
`time_iou`, `ci95` (stratified cluster bootstrap), `by_category`, `by_source`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import prompts
from common.errors import UserError, where
from eval import judging
from eval import metrics as M
from eval.join import Pair, reference_meta
from eval.judge import JudgeRequest
from eval.parse import FAKE, REAL, box_to_ratio, canonical_box_format, parse_generation
from eval.tables import fmt as _fmt
from eval.tables import fmt_ci
from eval.tasks import ScoreContext

NAME = "deeptrace"
JUDGE_PROMPT_FILE = "deeptrace/judge.txt"
JUDGE_PROMPT = prompts.load(JUDGE_PROMPT_FILE)  # the paper's App. D text, verbatim


# --- judge prompt and reply --------------------------------------------------------------------------------------


def judge_messages(reference: str, prediction: str) -> list[dict[str, str]]:
    """App. D prompt + one more pair in the style of its examples (our reconstruction: the paper shows no slots).

    The whole prompt is one user message: the paper's text, a blank line, then
    `Ground Truth: '<reference>'` / `Predicted   : '<prediction>'` / `Answer      :` (whitespace-normalised texts,
    each cut to eval/judging.py's MAX_TEXT_CHARS).
    """
    reference, prediction = (judging.cap(" ".join(t.split())) for t in (reference, prediction))
    text = f"{JUDGE_PROMPT}\nGround Truth: '{reference}'\nPredicted   : '{prediction}'\nAnswer      :"
    return [{"role": "user", "content": text}]


_SCORE_NUMBER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)(?!\.?\d)")


def parse_judge_score(reply: str) -> float | None:
    """0, 0.5 or 1 when the reply states exactly one number and it is one of those; otherwise None."""
    values = {float(n) for n in _SCORE_NUMBER.findall(reply or "")}
    if len(values) == 1:
        value = values.pop()
        if value in (0.0, 0.5, 1.0):
            return value
    return None


# --- references --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    truth: M.Truth
    group: str
    categories: tuple[str, ...]
    source: str | None
    answer_format: str
    width: float | None
    height: float | None


def _number(meta: dict, key: str, ctx: str, *, positive: bool = False, optional: bool = False) -> float | None:
    value = meta.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{ctx}: meta.{key} must be a number (got {value!r})")
    if value < 0 or (positive and value <= 0):
        raise UserError(f"{ctx}: meta.{key} must be {'positive' if positive else 'non-negative'} (got {value!r})")
    return float(value)


def read_reference(record: dict[str, Any], ctx: str, bbox_format: str | None) -> Reference:
    meta = reference_meta(record, ctx, NAME, "converters/*_to_swift.py", (FAKE, REAL))
    label = meta["label"]
    videos = record.get("videos")
    group = meta.get("video_id") or (videos[0] if isinstance(videos, list) and videos else None) or ctx
    categories = meta.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise UserError(f"{ctx}: meta.categories must be a list of strings")
    source = meta.get("source")
    answer_format = bbox_format or canonical_box_format(meta.get("answer_bbox_format") or meta.get("bbox_format")
                                                        or "pixels")
    if answer_format is None:
        raise UserError(f"{ctx}: unknown meta.answer_bbox_format {meta.get('answer_bbox_format')!r} "
                        f"(use pixels/abs, norm1000 or norm1, or pass --bbox-format)")
    width = _number(meta, "width", ctx, positive=True, optional=label == REAL)
    height = _number(meta, "height", ctx, positive=True, optional=label == REAL)
    if label == REAL:
        truth = M.Truth(REAL)
    else:
        bbox = meta.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
            raise UserError(f"{ctx}: a fake sample needs meta.bbox = [x0, y0, x1, y1] (got {bbox!r})")
        gt_format = canonical_box_format(meta.get("bbox_format") or "pixels")
        if gt_format is None:
            raise UserError(f"{ctx}: unknown meta.bbox_format {meta.get('bbox_format')!r}")
        explanation = meta.get("explanation")
        if explanation is not None and not isinstance(explanation, str):
            raise UserError(f"{ctx}: meta.explanation must be a string or null")
        truth = M.Truth(
            FAKE, box=box_to_ratio(bbox, gt_format, width, height), start=_number(meta, "start", ctx),
            end=_number(meta, "end", ctx, optional=True), duration=_number(meta, "duration", ctx, positive=True),
            explanation=" ".join(explanation.split()) if explanation and explanation.strip() else None)
    return Reference(truth, str(group), tuple(categories), source if isinstance(source, str) else None,
                     answer_format, width, height)


# --- CLI hooks ---------------------------------------------------------------------------------------------------


def add_arguments(group) -> None:
    group.add_argument("--bbox-format", choices=("pixels", "abs", "norm1000", "norm1"), default=None,
                       help="box convention of the generations: source-video pixels (pixels = abs, the paper's), "
                            "a 0-1000 grid or 0-1 fractions (default: each reference's meta.answer_bbox_format, "
                            "else pixels)")


def score(pairs: list[Pair], args: Any, *, context: ScoreContext) -> dict[str, Any]:
    strict = bool(getattr(args, "compat", False))
    override = canonical_box_format(args.bbox_format) if getattr(args, "bbox_format", None) else None
    refs = [read_reference(p.ref, where(context.references, p.ref_line), override) for p in pairs]

    guesses: list[M.Guess] = []
    issues: Counter[str] = Counter()
    unparseable_lines: list[int] = []
    for pair, ref in zip(pairs, refs, strict=True):
        parsed = parse_generation(pair.pred.get("response"), strict=strict)
        issues.update(parsed.issues)
        if parsed.label is None:
            unparseable_lines.append(pair.pred_line)
        box = None
        if parsed.box is not None and parsed.label == FAKE and (ref.answer_format != "pixels" or ref.width):
            box = box_to_ratio(parsed.box, ref.answer_format, ref.width, ref.height)
        guesses.append(M.Guess(parsed.label, box, parsed.start, parsed.end, parsed.explanation))

    cap = not strict
    rows = [M.score_sample(r.truth, g, cap_distance=cap) for r, g in zip(refs, guesses, strict=True)]
    rows = [replace(row, group=r.group, categories=r.categories, source=r.source)
            for row, r in zip(rows, refs, strict=True)]

    # Per-video protocol: each prediction against the trace of its video that it matches best.
    traces: dict[str, list[int]] = {}
    for i, r in enumerate(refs):
        if r.truth.label == FAKE:
            traces.setdefault(r.group, []).append(i)
    matched = list(range(len(refs)))
    video_rows = list(rows)
    for i, r in enumerate(refs):
        if r.truth.label != FAKE or len(traces[r.group]) < 2:
            continue
        best = min(traces[r.group], key=lambda j: M.match_key(
            M.score_sample(refs[j].truth, guesses[i], cap_distance=cap), own=j == i, order=j))
        matched[i] = best
        if best != i:
            video_rows[i] = replace(M.score_sample(refs[best].truth, guesses[i], cap_distance=cap),
                                    group=r.group, categories=r.categories, source=r.source)

    # Explanations: judge each distinct (true, predicted) pair once; a missing prediction scores 0 without a call.
    def wanted(i: int, j: int) -> tuple[str, str] | None:
        truth = refs[j].truth
        if truth.label != FAKE or truth.explanation is None:
            return None
        g = guesses[i]
        # ("", "") marks an explained sample without a predicted explanation: it scores 0 with no call
        return (truth.explanation, g.explanation) if g.label == FAKE and g.explanation else ("", "")

    sample_pairs = [wanted(i, i) for i in range(len(refs))]
    video_pairs = [wanted(i, matched[i]) for i in range(len(refs))]
    to_judge = sorted({p for p in sample_pairs + video_pairs if p and p[1]})
    judge_report = None
    judge = context.make_judge() if any(sample_pairs) or any(video_pairs) else None
    scores: dict[tuple[str, str], float] | None = None
    judge_unparseable = judge_failed = 0
    partial: list[str] = []
    if judge is not None:
        # A failed call leaves its samples out of explanation (and overall); eval/judging.py decides what is reported.
        outcome = judging.run(
            judge, {(gt, pred): JudgeRequest(judge_messages(gt, pred), info={"task": NAME, "reference": gt,
                                                                             "prediction": pred})
                    for gt, pred in to_judge},
            parse_judge_score, worst=0.0, strict=getattr(args, "judge_strict", False), what="explanation calls",
            desc="judging explanations")
        judge_unparseable, judge_failed = outcome.unparseable, len(outcome.failed)
        need = [(s, v) for s, v in zip(sample_pairs, video_pairs, strict=True) if s or v]
        cov = judging.coverage(len(need), sum(s in outcome.failed or v in outcome.failed for s, v in need),
                               getattr(args, "judge_min_coverage", judging.MIN_COVERAGE))
        scores = outcome.scores if cov["status"] != "insufficient" else None
        partial = ["explanation", "overall"] if cov["status"] == "partial" else []
        judge_report = {**outcome.report, "prompt": f"prompts/{JUDGE_PROMPT_FILE}",
                        "metrics": ["explanation", "overall"], "coverage": cov,
                        "cut_texts": sum(judging.is_cut(t) for pair in to_judge for t in pair)}

    def explain(row: M.Row, pair: tuple[str, str] | None) -> M.Row:
        if scores is None or pair is None:
            return row
        return M.with_explanation(row, scores.get(pair) if pair[1] else 0.0)  # a failed call: None, left out

    rows = [explain(row, p) for row, p in zip(rows, sample_pairs, strict=True)]
    video_rows = [explain(row, p) for row, p in zip(video_rows, video_pairs, strict=True)]

    with_end = any(g.label == FAKE and g.end is not None
                   for g, r in zip(guesses, refs, strict=True) if r.truth.label == FAKE)
    result_metrics = M.aggregate(rows, time_iou=with_end)
    per_video_rows = M.collapse_groups(video_rows)

    def drop(table: dict[str, dict[str, Any]], *keys: str) -> dict[str, dict[str, Any]]:
        for entry in table.values():
            entry["metrics"].update(dict.fromkeys(keys))
        return table

    fake_rows = [r for r in rows if r.label == FAKE]
    counts = {
        "n": len(rows),
        "fake": len(fake_rows),
        "real": len(rows) - len(fake_rows),
        "explained": sum(r.truth.explanation is not None for r in refs if r.truth.label == FAKE),
        "unparseable": len(unparseable_lines),
        "predicted_fake": sum(g.label == FAKE for g in guesses),
        "predicted_real": sum(g.label == REAL for g in guesses),
        "judged": len(to_judge) - judge_failed if judge is not None else 0,
        "judge_unparseable": judge_unparseable,
        "judge_failed": judge_failed,
        "predicted_end": sum(g.label == FAKE and g.end is not None for g in guesses),
    }
    return {
        "task": NAME,
        "metrics": result_metrics,
        "counts": counts,
        "ci95": M.bootstrap_ci(rows, args.bootstrap, args.seed, time_iou=with_end) if args.bootstrap else None,
        "per_video": {"metrics": M.aggregate(per_video_rows, time_iou=with_end),
                      "counts": {"videos": len(per_video_rows),
                                 "fake_videos": sum(r.label == FAKE for r in per_video_rows),
                                 "real_videos": sum(r.label == REAL for r in per_video_rows),
                                 "rematched_samples": sum(m != i for i, m in enumerate(matched))}},
        # Groups hold fake samples only (categories) or one kind (sources): Overall mixing real and fake is not shown.
        "by_category": drop(M.breakdown(fake_rows, lambda r: r.categories or ("(none)",), time_iou=with_end),
                            "overall", "accuracy", "real_accuracy"),
        "by_source": drop(M.breakdown(rows, lambda r: (r.source or "(unknown)",), time_iou=with_end), "overall"),
        "parse": {"issues": dict(sorted(issues.items())), "unparseable_lines": unparseable_lines[:50]},
        "judge": judge_report,
        "partial": partial,  # metrics computed over the judged samples only (some judge calls failed)
        "settings": {"protocol": "per-sample (paper)", "compat": strict, "bbox_format": override or "from references",
                     "bootstrap": args.bootstrap, "seed": args.seed},
        "files": {"predictions": context.predictions, "references": context.references},
        "join": context.join,
    }


# --- table -------------------------------------------------------------------------------------------------------

ROWS = (
    ("overall", "Overall ↑"), ("accuracy", "Acc. ↑"), ("fake_accuracy", "Fake Acc. ↑"),
    ("real_accuracy", "Real Acc. ↑"), ("explanation", "Explanation ↑"), ("bbox_iou", "BBox IoU ↑"),
    ("bbox_distance", "BBox Dist. ↓"), ("time_distance", "Time Dist. ↓"), ("time_iou", "Time IoU ↑ (ours)"),
)


def format_table(result: dict[str, Any]) -> str:
    m, c, ci = result["metrics"], result["counts"], result.get("ci95") or {}
    pv = result["per_video"]["metrics"]
    lines = ["| metric | per sample (paper) | 95% CI | per video (ours) |", "|---|---:|---:|---:|"]
    for key, title in ROWS:
        lines.append(f"| {title} | {_fmt(m[key])} | {fmt_ci(ci.get(key))} | {_fmt(pv[key])} |")
    lines.append("")
    lines.append(f"n = {c['n']} (fake {c['fake']}, real {c['real']}); explained {c['explained']}; "
                 f"unparseable {c['unparseable']}; judged {c['judged']} (unparseable replies {c['judge_unparseable']})"
                 + ("" if result["judge"] else "; explanation and overall need the judge (--no-judge)"))
    for title, key in (("category", "by_category"), ("source", "by_source")):
        table = result.get(key) or {}
        if not table:
            continue
        lines += ["", f"| {title} | n | Acc. | Fake Acc. | Real Acc. | Explan. | IoU | BBox Dist. | Time Dist. |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, entry in table.items():
            bm = entry["metrics"]
            lines.append(f"| {name} | {entry['counts']['n']} | {_fmt(bm['accuracy'])} | {_fmt(bm['fake_accuracy'])} | "
                         f"{_fmt(bm['real_accuracy'])} | {_fmt(bm['explanation'])} | {_fmt(bm['bbox_iou'])} | "
                         f"{_fmt(bm['bbox_distance'])} | {_fmt(bm['time_distance'])} |")
    return "\n".join(lines)
