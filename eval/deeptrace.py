"""DeeptraceReward scoring (paper Table 2): read references, score each response, judge explanations, aggregate.

The answer format (question, rendering, parsing, box conventions, rounding) is `prompts/deeptrace.py`'s; this module
scores what it reads. `score_response` is the per-sample step (parse -> frame fractions -> metrics, no judge), shared
with the RL rewards. See eval/README.md.

`metrics` is the paper's per-sample protocol. Everything of ours is reported beside it and never changes it:
`per_video` (each video once, each prediction scored against the trace of its video that it matches best),
`time_iou`, `ci95` (stratified cluster bootstrap), `by_category`, `by_source`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.errors import UserError, where
from common.join import Pair, assistant_text, media_paths, reference_meta
from eval import judging
from eval import metrics as M
from eval.judge import DEFAULT_MODEL, Judge, JudgeCache, JudgeRequest, cache_key
from eval.report_cards import BAD, GOOD, CardContext, raw_texts
from eval.tables import fmt as _fmt
from eval.tables import fmt_ci
from eval.tasks import ScoreContext, Scored
from prompts import deeptrace as D
from prompts.deeptrace import FAKE, REAL, parse_judge_score
from prompts.deeptrace_categories import PAPER_CATEGORIES

NAME = "deeptrace"
STREAMING = True  # `score` reads each pair once and keeps only its Reference and Row
JUDGE_PROMPT_FILE = D.JUDGE_PROMPT_FILE

# Scoring issues (beside the codec's parse issues, prompts/deeptrace.ISSUES), counted in metrics.json parse.issues
OUTSIDE = "box outside the frame"  # under the box convention used; see the warning in `box_convention_check`
FRAMES_WITHOUT_FPS = "time in frames, no fps"  # meta.fps is needed to turn a frame number into seconds
OUTSIDE_SHARE = 0.05  # more than this share of predicted boxes outside the frame prints one warning


def judge_messages(reference: str, prediction: str) -> list[dict[str, str]]:
    """The codec's App. D judge prompt (`prompts.deeptrace.judge_messages`) for two explanations, each
    whitespace-normalised and cut to eval/judging.py's MAX_TEXT_CHARS (a runaway generation is not sent whole)."""
    return D.judge_messages(*(judging.cap(" ".join(t.split())) for t in (reference, prediction)))


# --- references --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    truth: M.Truth
    group: str
    categories: tuple[str, ...]
    source: str | None
    answer_format: D.BoxFormat  # the box convention the generations are read in
    width: float | None
    height: float | None
    fps: float | None = None
    tags: tuple[str, ...] | None = None  # meta.tags, the raw category tags (None: references converted before them)


def _number(meta: dict, key: str, ctx: str, *, positive: bool = False, optional: bool = False) -> float | None:
    value = meta.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{ctx}: meta.{key} must be a number (got {value!r})")
    if value < 0 or (positive and value <= 0):
        raise UserError(f"{ctx}: meta.{key} must be {'positive' if positive else 'non-negative'} (got {value!r})")
    return float(value)


def _meta_format(meta: dict, key: str, ctx: str) -> D.BoxFormat:
    name = meta.get(key) or "pixels"
    found = D.box_format(name)
    if found is None:
        raise UserError(f"{ctx}: unknown meta.{key} {name!r} (known: {', '.join(D.BOX_FORMAT_NAMES)})")
    return found


def _trained_on(record: dict[str, Any], fmt: D.BoxFormat, width: float, height: float,
                box: M.Box, start: float, ctx: str) -> tuple[M.Box, float]:
    """The box and onset the reference's own answer states (what the model was trained on: rounded numbers), checked
    against meta; the meta values where the answer states none."""
    text = assistant_text(record)
    said = D.parse(text, strict=True) if text else None
    if said is None or said.label != FAKE or said.box is None:
        return box, start
    stated = D.to_ratio(said.box, fmt, width, height)
    # the answer holds meta's numbers rounded to one written step of its convention (half a step, and a little for
    # meta.bbox's own 3 decimals of a pixel), here in fractions of the frame
    step = 10.0 ** -fmt.decimals
    tol_x, tol_y = 0.51 * step / (fmt.scale or width), 0.51 * step / (fmt.scale or height)
    if any(abs(a - b) > tol for a, b, tol in zip(stated, box, (tol_x, tol_y, tol_x, tol_y), strict=True)):
        raise UserError(f"{ctx}: the reference answer's box {D.format_bbox(said.box, fmt)} read as {fmt.name} "
                        f"(meta.answer_bbox_format) is not meta.bbox rounded; is meta.answer_bbox_format right?")
    if said.start is None:
        return stated, start
    if abs(said.start - start) > 0.51 * 10.0 ** -D.TIME_DECIMALS:
        raise UserError(f"{ctx}: the reference answer's onset {said.start:g} s is not meta.start {start:g} rounded")
    return stated, said.start


def read_reference(record: dict[str, Any], ctx: str, bbox_format: str | None = None) -> Reference:
    """One reference line: meta checked, the truth in frame fractions and seconds.

    A fake sample is scored against what its answer (the last assistant message, when it is the codec's FAKE answer)
    says: meta.bbox and meta.start rounded the way the answer writes them. `bbox_format` overrides the convention the
    generations are read in (default: meta.answer_bbox_format, else pixels)."""
    meta = reference_meta(record, ctx, NAME, "converters/*_to_swift.py", (FAKE, REAL))
    label = meta["label"]
    videos = record.get("videos")
    group = meta.get("video_id") or (videos[0] if isinstance(videos, list) and videos else None) or ctx
    categories = meta.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise UserError(f"{ctx}: meta.categories must be a list of strings")
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise UserError(f"{ctx}: meta.tags must be a list of strings")
    source = meta.get("source")
    data_format = _meta_format(meta, "answer_bbox_format", ctx)
    answer_format = D.BOX_FORMATS[bbox_format] if bbox_format else data_format
    width = _number(meta, "width", ctx, positive=True, optional=label == REAL)
    height = _number(meta, "height", ctx, positive=True, optional=label == REAL)
    fps = _number(meta, "fps", ctx, positive=True, optional=True)
    if label == REAL:
        truth = M.Truth(REAL)
    else:
        bbox = meta.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
            raise UserError(f"{ctx}: a fake sample needs meta.bbox = [x0, y0, x1, y1] (got {bbox!r})")
        explanation = meta.get("explanation")
        if explanation is not None and not isinstance(explanation, str):
            raise UserError(f"{ctx}: meta.explanation must be a string or null")
        box = D.to_ratio(bbox, _meta_format(meta, "bbox_format", ctx), width, height)
        box, start = _trained_on(record, data_format, width, height, box, _number(meta, "start", ctx), ctx)
        truth = M.Truth(
            FAKE, box=box, start=start, end=_number(meta, "end", ctx, optional=True),
            duration=_number(meta, "duration", ctx, positive=True),
            explanation=" ".join(explanation.split()) if explanation and explanation.strip() else None)
    return Reference(truth, str(group), tuple(categories), source if isinstance(source, str) else None,
                     answer_format, width, height, fps, None if tags is None else tuple(tags))


# --- one response ----------------------------------------------------------------------------------------------------


def guess_of(answer: D.Answer, reference: Reference, issues: list[str]) -> M.Guess:
    """What `answer` says in the scorer's units (frame fractions, seconds); what cannot be converted is missing and
    its reason appended to `issues`."""
    if answer.label != FAKE:
        return M.Guess(answer.label)
    box = None
    if answer.box is not None and (reference.answer_format.scale or reference.width):
        box = D.to_ratio(answer.box, reference.answer_format, reference.width, reference.height)
        if not D.inside_frame(box):
            issues.append(OUTSIDE)
    start, end = answer.start, answer.end
    if answer.start_frame is not None:  # "starting at frame 12": seconds only with the video's frame rate
        if reference.fps:
            start = answer.start_frame / reference.fps
            end = answer.end_frame / reference.fps if answer.end_frame is not None else end
        else:
            issues.append(FRAMES_WITHOUT_FPS)
    return M.Guess(FAKE, box, start, end, answer.explanation)


def score_response(response: object, reference: Reference, *, strict: bool = False) -> M.Row:
    """One sample: parse the response (`prompts.deeptrace.parse`), convert it with the reference's box convention and
    frame rate, and score it (worst-case fill-ins; the explanation is left to the judge). `strict` = --compat."""
    answer = D.parse(response, strict=strict)
    issues = list(answer.issues)
    guess = guess_of(answer, reference, issues)
    return M.score_sample(reference.truth, guess, cap_distance=not strict, group=reference.group,
                          categories=reference.categories, source=reference.source, answer=answer,
                          issues=tuple(issues))


def box_convention_check(rows: list[M.Row], refs: list[Reference], chosen: str) -> tuple[dict[str, Any], str | None]:
    """How many predicted boxes fall outside the frame under the convention used and, when more than OUTSIDE_SHARE
    of them do, how many fit under each convention, with one warning when another convention fits more of them."""
    boxes = sum(isinstance(row.answer, D.Answer) and row.answer.label == FAKE and row.answer.box is not None
                for row in rows)
    outside = sum(OUTSIDE in row.issues for row in rows)
    report: dict[str, Any] = {"boxes": boxes, "outside_frame": outside, "fit_frame": None}
    if not boxes or outside <= OUTSIDE_SHARE * boxes:
        return report, None
    fits: Counter[str] = Counter()
    for row, ref in zip(rows, refs, strict=True):
        answer = row.answer
        if not isinstance(answer, D.Answer) or answer.label != FAKE or answer.box is None:
            continue
        for name, fmt in D.BOX_FORMATS.items():
            if (fmt.scale or ref.width) and D.inside_frame(D.to_ratio(answer.box, fmt, ref.width, ref.height)):
                fits[name] += 1
    report["fit_frame"] = {name: fits[name] for name in D.BOX_FORMATS}
    best = max(D.BOX_FORMATS, key=lambda name: (fits[name], name == "pixels"))
    if fits[best] <= boxes - outside:
        return report, None
    return report, (f"{outside} of {boxes} predicted boxes ({100 * outside / boxes:.0f}%) fall outside the frame "
                    f"read as {chosen}; read as {best}, {fits[best]} fit: if the model answers in that convention, "
                    f"score with --bbox-format {best}")


# --- CLI hooks ---------------------------------------------------------------------------------------------------


OFFLINE: dict[str, Any] = {}  # nothing but the judge calls out, and the report runs without it


def add_arguments(group) -> None:
    group.add_argument("--bbox-format", choices=D.BOX_FORMAT_NAMES, default=None,
                       help="box convention of the generations: " + D.box_formats_help()
                            + " (default: each reference's meta.answer_bbox_format, else pixels)")
    group.add_argument("--by", choices=("categories", "tags"), default="categories",
                       help="the per-category breakdown: categories = meta.categories, the paper's nine fake-trace "
                            "categories as the converters map them, in the paper's order (default); tags = meta.tags, "
                            "the raw annotation tags")


def score(pairs: Iterable[Pair], args: Any, *, context: ScoreContext) -> Scored:
    strict = bool(getattr(args, "compat", False))
    override = getattr(args, "bbox_format", None)
    by = getattr(args, "by", None) or "categories"
    refs: list[Reference] = []
    rows: list[M.Row] = []
    unparseable_lines: list[int] = []
    for pair in pairs:  # one pass: only the Reference and the Row of a sample are kept
        ref = read_reference(pair.ref, where(context.references, pair.ref_line), override)
        row = score_response(pair.pred.get("response"), ref, strict=strict)
        refs.append(ref)
        rows.append(row)
        if row.guess.label is None:
            unparseable_lines.append(pair.pred_line)
    guesses = [row.guess for row in rows]
    cap = not strict
    issues: Counter[str] = Counter(issue for row in rows for issue in row.issues)
    notes: Counter[str] = Counter(note for row in rows for note in row.answer.notes)
    chosen = override or "/".join(sorted({r.answer_format.name for r in refs}))
    conventions, warning = box_convention_check(rows, refs, chosen)

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
            video_rows[i] = M.score_sample(refs[best].truth, guesses[i], cap_distance=cap, group=r.group,
                                           categories=r.categories, source=r.source)

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
    return Scored({
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
        "by_category": drop(category_breakdown(rows, refs, by, time_iou=with_end), "overall", "accuracy",
                            "real_accuracy"),
        "by_source": drop(M.breakdown(rows, lambda r: (r.source or "(unknown)",), time_iou=with_end), "overall"),
        "parse": {"issues": dict(sorted(issues.items())), "notes": dict(sorted(notes.items())),
                  "unparseable_lines": unparseable_lines[:50], "boxes": conventions},
        "warnings": [warning] if warning else [],
        "judge": judge_report,
        "partial": partial,  # metrics computed over the judged samples only (some judge calls failed)
        "settings": {"protocol": "per-sample (paper)", "compat": strict, "bbox_format": override, "by": by,
                     "bootstrap": args.bootstrap, "seed": args.seed},
        "files": {"predictions": context.predictions, "references": context.references},
        "join": context.join,
    }, list(zip(refs, rows, strict=True)))


def category_breakdown(rows: list[M.Row], refs: list[Reference], by: str, *, time_iou: bool
                       ) -> dict[str, dict[str, Any]]:
    """Metrics per category over the fake samples (multi-label: a sample counts in each of its categories): by the
    paper's nine (meta.categories) in the paper's order, then any other category (a tag the converter's map did not
    cover) by n; or by the raw tags (meta.tags) by n. Samples without any: "(none)", last."""
    if by == "tags":
        missing = sum(r.truth.label == FAKE and r.tags is None for r in refs)
        if missing:
            raise UserError(f"--by tags: {missing} fake reference(s) have no meta.tags (converted before the "
                            "converters wrote them): convert them again, or break down --by categories")
        keyed = [replace(row, categories=ref.tags or ()) for row, ref in zip(rows, refs, strict=True)
                 if row.label == FAKE]
    else:
        keyed = [row for row in rows if row.label == FAKE]
    table = M.breakdown(keyed, lambda r: r.categories or (NONE,), time_iou=time_iou)
    first = [c for c in PAPER_CATEGORIES if c in table] if by == "categories" else []
    rest = sorted((c for c in table if c not in first and c != NONE), key=lambda c: (-table[c]["counts"]["n"], c))
    return {c: table[c] for c in [*first, *rest, *([NONE] if NONE in table else [])]}


NONE = "(none)"  # the group of fake samples without a category (or tag)


# --- table -------------------------------------------------------------------------------------------------------

ROWS = (
    ("overall", "Overall ↑"), ("accuracy", "Acc. ↑"), ("fake_accuracy", "Fake Acc. ↑"),
    ("real_accuracy", "Real Acc. ↑"), ("explanation", "Explanation ↑"), ("bbox_iou", "BBox IoU ↑"),
    ("bbox_distance", "BBox Dist. ↓"), ("time_distance", "Time Dist. ↓"), ("time_iou", "Time IoU ↑ (ours)"),
)
# Per-category chart panels, in the spirit of the paper's Figure 5 (the first four with values are drawn)
CHART_METRICS = (("accuracy", "Acc. ↑", lambda v: v), ("fake_accuracy", "Fake Acc. ↑", lambda v: v),
                 ("explanation", "Explanation ↑", lambda v: v), ("bbox_iou", "BBox IoU ↑", lambda v: v),
                 ("time_distance", "100 − Time Dist. ↑", lambda v: 100.0 - v))


def metric_rows(task: str) -> list[tuple[str, str, int]]:
    return [(key, title, 1) for key, title in ROWS]


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
    by = (result.get("settings") or {}).get("by") or "categories"
    for title, key in (("category" if by == "categories" else "tag", "by_category"), ("source", "by_source")):
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


# --- report cards ----------------------------------------------------------------------------------------------------


class JudgeLookup:
    """Per-sample judge scores read (never requested) from eval/score.py's judge reply cache."""

    def __init__(self, cache_path: Path, model: str, params: dict[str, Any] | None = None):
        self.cache = JudgeCache(cache_path)
        self.model = model
        # the sampling parameters score.py's judge used (part of the cache key): the metrics' record, else its defaults
        self.params = params if isinstance(params, dict) else Judge(model).params
        self.found = 0

    def __call__(self, reference: str, prediction: str | None) -> tuple[float | None, str]:
        """(score or None, text) for a reference explanation and a predicted one (None: the model gave none)."""
        if not prediction:
            return 0.0, "0 (no predicted explanation)"  # scores 0 without a call
        replies = self.cache.get(cache_key(self.model, judge_messages(reference, prediction), self.params))
        result = Judge._resolve(replies, parse_judge_score)
        if result is None:
            return None, "not judged"
        self.found += 1
        return (result.value, f"{result.value:g}") if result.status == "ok" else (0.0, "0 (unparseable reply)")


def _box_text(box: Any) -> str:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return "–"
    return "[" + ", ".join(f"{v:g}" if isinstance(v, (int, float)) else "?" for v in box) + "]"


def report_cards(samples: list[tuple[Reference, M.Row]], pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    """Frames at the ground-truth and the predicted onset with both boxes, the scores, both explanations and the
    judge score (from the judge's reply cache) of each sample, from the scorer's rows."""
    from eval.report_media import GT_COLOUR, PRED_COLOUR  # drawing needs PIL: imported for reports only

    model = ctx.judge_model or DEFAULT_MODEL
    judge = JudgeLookup(ctx.judge_cache, model, ctx.judge_params) if ctx.judge_cache else None
    cards = []
    for (ref, row), pair in zip(samples, pairs, strict=True):
        truth, guess, answer = ref.truth, row.guess, row.answer
        fake, said_fake = truth.label == FAKE, guess.label == FAKE
        meta = pair.ref.get("meta") or {}
        chips = []
        judged = None
        if fake:
            iou, dist, tdist = 100 * row.iou, 100 * row.dist, 100 * row.tdist
            chips += [["IoU", _fmt(iou), GOOD if iou >= 50 else BAD], ["BBox dist.", _fmt(dist), ""],
                      ["Time dist.", _fmt(tdist), GOOD if tdist <= 10 else BAD]]
            if row.tiou is not None:
                chips.append(["Time IoU", _fmt(100 * row.tiou), ""])
            if truth.explanation is not None and judge is not None:
                judged, why = judge(truth.explanation, guess.explanation if said_fake else None)
                chips.append(["Judge", why, "" if judged is None else GOOD if judged >= 1 else BAD if judged == 0
                              else ""])
            elif truth.explanation is None:
                chips.append(["Judge", "no GT explanation", ""])
        else:
            iou = tdist = None
        if row.issues:
            chips.append(["Parse", ", ".join(row.issues), BAD])

        videos = media_paths(pair.ref, "videos") or []
        video = videos[0] if videos else None
        boxes = [(truth.box if fake else None, GT_COLOUR), (guess.box if said_fake else None, PRED_COLOUR)]
        frames = []
        if video is not None:
            if fake:
                frames.append(ctx.media.frame(video, truth.start, boxes, f"ground-truth onset {truth.start:.2f} s"))
            if said_fake and guess.start is not None:
                frames.append(ctx.media.frame(video, guess.start, boxes, f"predicted onset {guess.start:.2f} s"))
            elif said_fake:
                frames.append(ctx.media.frame(video, truth.start if fake else None, boxes, "no predicted onset"
                                              + (" (GT onset frame)" if fake else " (middle frame)")))
            if not frames:
                frames.append(ctx.media.frame(video, None, [], "middle frame"))

        texts = []
        if fake:
            texts.append(["Ground-truth explanation", truth.explanation or "(none)"])
        if said_fake or fake:
            texts.append(["Predicted explanation", (guess.explanation if said_fake else None) or "(none)"])
        where_text = []
        if fake:
            where_text.append(f"GT box {_box_text(meta.get('bbox'))} from {truth.start:.2f} s"
                              + (f" to {truth.end:.2f} s" if truth.end is not None else ""))
        if said_fake:
            where_text.append(f"predicted box {_box_text(answer.box)} ({ref.answer_format.name}) from "
                              f"{'–' if guess.start is None else f'{guess.start:.2f} s'}"
                              + (f" to {guess.end:.2f} s" if guess.end is not None else ""))
        if where_text:
            texts.append(["Where / when", "; ".join(where_text)])

        title = str(meta.get("video_id") or video or f"line {pair.ref_line}")
        if meta.get("trace_id"):
            title += f" · trace {meta['trace_id']}"
        cards.append({
            "title": title, "media": video, "truth": truth.label, "pred": guess.label,
            "correct": guess.label == truth.label, "unparseable": guess.label is None,
            "iou": iou, "tdist": tdist, "judge": judged,
            "categories": list(ref.categories) or (["(none)"] if fake else []), "source": ref.source,
            "chips": chips, "frames": frames, "texts": texts, "raw": raw_texts(pair),
        })
    if judge is not None:
        ctx.notes.append(f"Judge scores from {ctx.judge_cache} ({judge.found} cached verdicts, model {model}).")
    return cards
