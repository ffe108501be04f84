"""DeeptraceReward metrics (paper sec. 4.1): pure functions, fractions in, 0–100 out.

Per sample (`Row`), with the paper's worst-case values for anything missing:
  correct      1 if the predicted label equals the true one (an unparseable label is wrong)
  iou          fake samples: IoU of the boxes in frame ratios (x/W, y/H); missing box → 0
  dist         fake samples: centre distance in frame ratios / √2; missing box → 1
  tdist        fake samples: |pred start − true start| / duration, capped at 1; missing start → 1
  tiou         fake samples with a true end: temporal IoU of [start, end]; missing predicted end → 0   (ours)
  expl         fake samples with a true explanation: judge score 0 / 0.5 / 1; missing prediction → 0
Aggregates (×100): accuracy (all), fake_accuracy, real_accuracy, explanation, bbox_iou, bbox_distance,
time_distance, time_iou; overall = (accuracy + explanation + bbox_iou + (100 − time_distance)) / 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

Box = tuple[float, float, float, float]
SQRT2 = math.sqrt(2.0)
METRIC_KEYS = ("overall", "accuracy", "fake_accuracy", "real_accuracy", "explanation", "bbox_iou", "bbox_distance",
               "time_distance", "time_iou")


# --- per-pair measures (fractions) ---------------------------------------------------------------------------------


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two `[x0, y0, x1, y1]` boxes; a box with x1 <= x0 or y1 <= y0 has no area."""
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    area_a = max(0.0, ax1 - ax0) * max(0.0, ay1 - ay0)
    area_b = max(0.0, bx1 - bx0) * max(0.0, by1 - by0)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: Box, b: Box, cap: bool = True) -> float:
    """Euclidean distance of the box centres (frame-ratio coordinates) / √2; capped at 1 (the missing-box value)."""
    d = math.hypot((a[0] + a[2]) / 2.0 - (b[0] + b[2]) / 2.0, (a[1] + a[3]) / 2.0 - (b[1] + b[3]) / 2.0) / SQRT2
    return min(d, 1.0) if cap else d


def time_distance(pred_start: float, true_start: float, duration: float) -> float:
    """|pred − true| / duration, capped at 1."""
    return min(abs(pred_start - true_start) / duration, 1.0)


def temporal_iou(ps: float, pe: float, ts: float, te: float) -> float:
    inter = max(0.0, min(pe, te) - max(ps, ts))
    union = max(0.0, pe - ps) + max(0.0, te - ts) - inter
    return inter / union if union > 0 and pe > ps else 0.0


def overall(accuracy: float | None, explanation: float | None, bbox_iou: float | None,
            time_distance: float | None) -> float | None:
    """The paper's Overall (0–100 inputs); None if any part is None."""
    if None in (accuracy, explanation, bbox_iou, time_distance):
        return None
    return (accuracy + explanation + bbox_iou + (100.0 - time_distance)) / 4.0


# --- samples -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth of one sample. Fake: box in frame ratios, start/end/duration in seconds."""

    label: str
    box: Box | None = None
    start: float | None = None
    end: float | None = None
    duration: float | None = None
    explanation: str | None = None


@dataclass(frozen=True, slots=True)
class Guess:
    """A parsed prediction; box already in frame ratios. Localisation/explanation only count for label 'fake'."""

    label: str | None
    box: Box | None = None
    start: float | None = None
    end: float | None = None
    explanation: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One sample's scores, and (from the scorer) what they were computed from, for reports and rewards."""

    label: str
    correct: float
    iou: float | None = None
    dist: float | None = None
    tdist: float | None = None
    tiou: float | None = None
    expl: float | None = None  # filled in from the judge; None = not explained (excluded)
    group: str = ""
    categories: tuple[str, ...] = field(default=())
    source: str | None = None
    # What the scores were computed from (not part of a Row's value: two rows with the same scores are equal)
    truth: Truth | None = field(default=None, compare=False)
    guess: Guess | None = field(default=None, compare=False)
    answer: object = field(default=None, compare=False)  # what the task's answer codec read (prompts/), as written
    issues: tuple[str, ...] = field(default=(), compare=False)  # parse and scoring issues of this sample


def score_sample(truth: Truth, guess: Guess, *, cap_distance: bool = True, **context) -> Row:
    """Row for one sample with worst-case fill-ins (explanation left None; see `with_explanation`). `context`: the
    Row fields that describe the sample (group, categories, source, answer, issues)."""
    correct = 1.0 if guess.label == truth.label else 0.0
    if truth.label != "fake":
        return Row(truth.label, correct, truth=truth, guess=guess, **context)
    said_fake = guess.label == "fake"
    box = guess.box if said_fake else None
    start = guess.start if said_fake else None
    end = guess.end if said_fake else None
    iou = box_iou(box, truth.box) if box is not None else 0.0
    dist = centre_distance(box, truth.box, cap_distance) if box is not None else 1.0
    tdist = time_distance(start, truth.start, truth.duration) if start is not None else 1.0
    tiou = None
    if truth.end is not None:
        tiou = temporal_iou(start, end, truth.start, truth.end) if start is not None and end is not None else 0.0
    return Row(truth.label, correct, iou=iou, dist=dist, tdist=tdist, tiou=tiou, truth=truth, guess=guess, **context)


def match_key(row: Row, own: bool, order: int) -> tuple:
    """Best trace first: highest IoU, then nearest centre, then nearest start, then the sample's own trace."""
    return (-(row.iou or 0.0), row.dist if row.dist is not None else 1.0, row.tdist if row.tdist is not None else 1.0,
            0 if own else 1, order)


# --- aggregation ---------------------------------------------------------------------------------------------------

# metric -> (row field, which rows count)
_FIELDS: dict[str, tuple[str, Callable[[Row], bool]]] = {
    "accuracy": ("correct", lambda r: True),
    "fake_accuracy": ("correct", lambda r: r.label == "fake"),
    "real_accuracy": ("correct", lambda r: r.label == "real"),
    "explanation": ("expl", lambda r: r.label == "fake" and r.expl is not None),
    "bbox_iou": ("iou", lambda r: r.label == "fake" and r.iou is not None),
    "bbox_distance": ("dist", lambda r: r.label == "fake" and r.dist is not None),
    "time_distance": ("tdist", lambda r: r.label == "fake" and r.tdist is not None),
    "time_iou": ("tiou", lambda r: r.label == "fake" and r.tiou is not None),
}


def _mean(values: Sequence[float]) -> float | None:
    return 100.0 * math.fsum(values) / len(values) if values else None


def aggregate(rows: Iterable[Row], *, time_iou: bool = True) -> dict[str, float | None]:
    """The metrics of a set of rows (0–100; None where no row counts)."""
    rows = list(rows)
    out: dict[str, float | None] = {}
    for name, (attr, counts) in _FIELDS.items():
        out[name] = _mean([getattr(r, attr) for r in rows if counts(r)])
    if not time_iou:
        out["time_iou"] = None
    out["overall"] = overall(out["accuracy"], out["explanation"], out["bbox_iou"], out["time_distance"])
    return {key: out[key] for key in METRIC_KEYS}


def collapse_groups(rows: Iterable[Row]) -> list[Row]:
    """One row per (label, group): each field is the mean over the group's rows that have it (per-video protocol)."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.label, r.group), []).append(r)
    out = []
    for (label, group), members in groups.items():
        if len(members) == 1:
            out.append(members[0])
            continue
        means = {}
        for attr in ("correct", "iou", "dist", "tdist", "tiou", "expl"):
            values = [v for v in (getattr(m, attr) for m in members) if v is not None]
            means[attr] = math.fsum(values) / len(values) if values else None
        cats = tuple(sorted({c for m in members for c in m.categories}))
        out.append(Row(label, group=group, categories=cats, source=members[0].source, **means))
    return out


def breakdown(rows: Sequence[Row], key: Callable[[Row], Iterable[str]], *, time_iou: bool = True
              ) -> dict[str, dict[str, object]]:
    """Metrics and counts per value of `key` (a row may fall in several groups, e.g. multi-label categories)."""
    buckets: dict[str, list[Row]] = {}
    for r in rows:
        for k in key(r):
            buckets.setdefault(k, []).append(r)
    return {
        k: {"metrics": aggregate(members, time_iou=time_iou), "counts": row_counts(members)}
        for k, members in sorted(buckets.items())
    }


def row_counts(rows: Sequence[Row]) -> dict[str, int]:
    return {"n": len(rows), "fake": sum(r.label == "fake" for r in rows), "real": sum(r.label == "real" for r in rows),
            "explained": sum(r.label == "fake" and r.expl is not None for r in rows)}


def with_explanation(row: Row, score: float | None) -> Row:
    return replace(row, expl=score)


# --- bootstrap -----------------------------------------------------------------------------------------------------


def bootstrap_ci(rows: Sequence[Row], n: int, seed: int = 0, *, level: float = 0.95, time_iou: bool = True,
                 chunk: int = 50) -> dict[str, list[float] | None]:
    """Percentile CIs of every metric by a stratified cluster bootstrap.

    Clusters are videos (`Row.group`; the traces of one video are not independent), resampled with replacement
    separately among fake and among real videos so that every replicate keeps the test set's composition.
    """
    if n <= 0 or not rows:
        return {}
    groups: dict[tuple[str, str], int] = {}
    gidx = np.empty(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        gidx[i] = groups.setdefault((r.label, r.group), len(groups))
    names = list(_FIELDS)
    sums = np.zeros((len(groups), len(names)))
    cnts = np.zeros((len(groups), len(names)))
    for j, name in enumerate(names):
        attr, counts = _FIELDS[name]
        mask = np.array([counts(r) for r in rows], dtype=bool)
        vals = np.array([getattr(r, attr) if m else 0.0 for r, m in zip(rows, mask, strict=True)], dtype=float)
        np.add.at(sums[:, j], gidx[mask], vals[mask])
        np.add.at(cnts[:, j], gidx[mask], 1.0)
    labels = [label for label, _ in groups]
    strata = [np.array([g for g, lab in enumerate(labels) if lab == want]) for want in sorted(set(labels))]
    rng = np.random.default_rng(seed)
    reps: list[np.ndarray] = []
    G = len(groups)
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        weights = np.zeros((b, G))
        for members in strata:
            draws = members[rng.integers(0, len(members), size=(b, len(members)))]
            flat = (draws + (np.arange(b) * G)[:, None]).ravel()
            weights += np.bincount(flat, minlength=b * G).reshape(b, G)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps.append(100.0 * (weights @ sums) / (weights @ cnts))
    values = np.vstack(reps)  # (n, metrics); NaN where a replicate has no row for a metric
    col = {name: values[:, j] for j, name in enumerate(names)}
    col["overall"] = (col["accuracy"] + col["explanation"] + col["bbox_iou"] + (100.0 - col["time_distance"])) / 4.0
    alpha = (1.0 - level) / 2.0
    out: dict[str, list[float] | None] = {}
    for key in METRIC_KEYS:
        v = col[key]
        v = v[~np.isnan(v)]
        empty = key != "overall" and not cnts[:, names.index(key)].any()
        if (key == "time_iou" and not time_iou) or v.size == 0 or empty:
            out[key] = None
        else:
            lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
            out[key] = [float(lo), float(hi)]
    return out
