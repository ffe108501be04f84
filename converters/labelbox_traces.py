"""LabelBox facts: the label model shared by Export v2 and v1, classification answers, and segments → traces.

Conventions (converters/README.md has the full story):
- A *trace* is one contiguous segment `[s, e]` (inclusive, 1-based Labelbox frames) of one object.
- Inside a segment, boxes between two exported frames are linear tweens (Labelbox interpolation); before the first
  and after the last exported frame of the segment the nearest box is held. Never across a gap between segments.
- `bbox_mode="first"`: the box at frame `s`; `"union"`: the union of the boxes on every frame of `[s, e]`.
- start = (s − 1) / fps, end = e / fps (frame 1 starts at t = 0).
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from common.errors import UserError
from converters.boxes import Box, clip_box, number
from converters.dataset_writer import Trace, clean_text

# --------------------------------------------------------------------------------------------------------------------
# Boxes over frames


def box_at(anchors: Sequence[tuple[int, Box]], frame: int) -> Box:
    """Box at `frame` from the exported boxes of one segment (sorted by frame): linear tween, held at the ends."""
    if frame <= anchors[0][0]:
        return anchors[0][1]
    if frame >= anchors[-1][0]:
        return anchors[-1][1]
    i = bisect.bisect_right([f for f, _ in anchors], frame)
    (f0, b0), (f1, b1) = anchors[i - 1], anchors[i]
    if frame == f0:
        return b0
    t = (frame - f0) / (f1 - f0)
    return tuple(a + (b - a) * t for a, b in zip(b0, b1, strict=True))  # type: ignore[return-value]


def union_box(anchors: Sequence[tuple[int, Box]], start: int, end: int) -> Box:
    """Union of the boxes on every frame of `[start, end]`.

    Tweens are linear in the frame number, so each coordinate's extreme over a stretch between two anchors is at an
    anchor; the held boxes before/after the first/last anchor are anchors too. The union of the anchors (and of the
    boxes at both ends) is therefore exact, in O(anchors) instead of O(frames).
    """
    boxes = [b for f, b in anchors if start <= f <= end] + [box_at(anchors, start), box_at(anchors, end)]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


# --------------------------------------------------------------------------------------------------------------------
# Classifications (LabelBox v2 and v1 shapes, any nesting) flattened to facts


class Fact(NamedTuple):
    """One answer of one classification question: `kind` "text" (free text) or "choice" (radio/checklist)."""

    keys: frozenset[str]  # lower-cased question name / value / title / schema id: what --*-feature matches
    kind: str
    value: str


_KEY_FIELDS = ("name", "value", "title", "feature_schema_id", "schemaId", "schema_id")
_keys_cache: dict[tuple, frozenset[str]] = {}
_ANSWER_KEYS = frozenset(("text_answer", "radio_answer", "checklist_answers", "answers", "answer"))
_new_fact = functools.partial(tuple.__new__, Fact)  # Fact((keys, kind, value)) without NamedTuple's Python __new__


def _keys(node: dict) -> frozenset[str]:
    raw = tuple(map(node.get, _KEY_FIELDS))
    keys = _keys_cache.get(raw)
    if keys is None:
        keys = frozenset(v.strip().lower() for v in raw if isinstance(v, str))
        if len(_keys_cache) < 100_000:
            _keys_cache[raw] = keys
    return keys


def _flatten(items: Any) -> Iterator[Any]:
    if isinstance(items, list):
        for item in items:
            yield from _flatten(item)  # v1 checklists sometimes come wrapped in an extra list
    elif items is not None:
        yield items


def classification_facts(classifications: Any) -> list[Fact]:
    """Every text and choice answer in a classification list, nested sub-questions included."""
    out: list[Fact] = []
    _collect(classifications, out)
    return out


def _collect(node: Any, out: list[Fact]) -> None:
    if isinstance(node, list):
        for item in node:  # also flattens v1 checklists wrapped in an extra list
            if isinstance(item, dict):
                _collect_node(item, out)
            else:
                _collect(item, out)
    elif isinstance(node, dict):
        _collect_node(node, out)


def _collect_node(node: dict, out: list[Fact]) -> None:
    keys = _keys(node)
    answers: list[Any] = []
    present = _ANSWER_KEYS.intersection(node)
    for key in present if len(present) < 2 else [k for k in node if k in present]:  # in the node's order
        value = node[key]
        if key == "text_answer":  # v2 free text
            text = value.get("content") if isinstance(value, dict) else value
            if isinstance(text, str):
                out.append(_new_fact((keys, "text", text)))
        elif isinstance(value, str) and key == "answer":  # v1 / import free text
            out.append(_new_fact((keys, "text", value)))
        elif isinstance(value, dict):  # v2 radio / v1 radio
            answers.append(value)
        elif isinstance(value, list):  # v2 checklist / v1 checklist, dropdown
            for item in value:
                if isinstance(item, dict):
                    answers.append(item)
                else:
                    answers.extend(_flatten(item))
    for ans in answers:
        if not isinstance(ans, dict):
            continue
        for k in ("name", "title", "value"):
            label = ans.get(k)
            if isinstance(label, str) and label.strip():
                out.append(_new_fact((keys, "choice", label.strip())))
                break
        sub = ans.get("classifications")
        if sub:
            _collect(sub, out)


def wants(fact: Fact, names: frozenset[str] | None) -> bool:
    return names is None or bool(fact.keys & names)


# --------------------------------------------------------------------------------------------------------------------
# The normalised label model shared by Export v2 and v1


@dataclass
class ObjectTrack:
    """One annotated object (a Labelbox feature_id) across frames."""

    feature_id: str
    name: str | None = None
    boxes: dict[int, Box] = field(default_factory=dict)  # frame → box (keyframes, or every frame if materialised)
    facts: dict[int, list[Fact]] = field(default_factory=dict)  # frame → nested classification answers
    segments: list[tuple[int, int]] | None = None  # inclusive ranges; None → inferred


@dataclass
class LabelData:
    label_id: str | None
    objects: dict[str, ObjectTrack] = field(default_factory=dict)
    ranged: list[tuple[list[tuple[int, int]], list[Fact]]] = field(default_factory=list)  # frame-ranged classifications
    global_facts: list[Fact] = field(default_factory=list)
    contiguous_frames: bool = False  # True when every frame of an object's presence is listed (v1): infer runs


@dataclass
class TraceOptions:
    bbox_mode: str = "first"
    explanation_names: frozenset[str] | None = None
    category_names: frozenset[str] | None = None
    strict: bool = False


_EXACT = 2**53  # ints up to this survive int(float(v)) unchanged


def parse_segments(raw: Any, ctx: str) -> list[tuple[int, int]]:
    if not isinstance(raw, list):
        raise UserError(f"{ctx}: segments must be a list of [start, end] frame pairs, got {type(raw).__name__}")
    out = []
    for seg in raw:
        if not (isinstance(seg, (list, tuple)) and len(seg) == 2):
            raise UserError(f"{ctx}: segment {seg!r} is not a [start, end] frame pair")
        s, e = seg
        if not (type(s) is int and type(e) is int and -_EXACT <= s <= _EXACT and -_EXACT <= e <= _EXACT):
            s, e = (int(number(v, ctx, "segment frame")) for v in seg)  # what the fast path skips: int(float(v))
        if s < 1 or e < s:
            raise UserError(f"{ctx}: segment [{s}, {e}] is not a valid 1-based inclusive frame range")
        out.append((s, e))
    return sorted(out)


def contiguous_runs(frames: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for n in sorted(set(frames)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return [(a, b) for a, b in runs]


def _overlaps(ranges: Sequence[tuple[int, int]], s: int, e: int) -> bool:
    return any(a <= e and b >= s for a, b in ranges)


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def build_traces(label: LabelData, *, width: float, height: float, fps: float, opts: TraceOptions,
                 stats: Counter, ctx: str) -> list[Trace]:
    """One `Trace` per contiguous segment of each object of one label."""
    traces = []
    for fid, obj in label.objects.items():
        boxes = obj.boxes
        if not boxes:
            continue
        if obj.segments is not None:
            segments = obj.segments
        elif label.contiguous_frames:
            segments = contiguous_runs(boxes)
        else:  # keyframes only and no `segments`: one segment from the first to the last exported frame
            segments = [(min(boxes), max(boxes))]
            stats["segments_inferred_first_to_last_frame"] += 1
        facts = sorted(obj.facts.items())
        for k, (s, e) in enumerate(segments):
            anchors = [(n, b) for n, b in boxes.items() if s <= n <= e]
            if not anchors:
                if opts.strict:
                    raise UserError(f"{ctx}: object {fid} segment [{s}, {e}] has no box on any of its frames")
                stats["segments_without_box"] += 1
                continue
            anchors.sort()
            box = box_at(anchors, s) if opts.bbox_mode == "first" else union_box(anchors, s, e)
            box, clipped = clip_box(box, width, height)
            if clipped:
                if opts.strict:
                    raise UserError(f"{ctx}: object {fid} frame {s}: box lies partly outside the {width:g}x{height:g} "
                                    "frame (--strict)")
                stats["boxes_clipped"] += 1
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                raise UserError(f"{ctx}: object {fid} segment [{s}, {e}]: box lies outside the "
                                f"{width:g}x{height:g} frame")
            explanation, categories = _describe(label, facts, s, e, opts)
            traces.append(Trace(
                bbox=box, start=(s - 1) / fps, end=e / fps, explanation=explanation, categories=categories,
                frames=(s, e),
                extra={"trace_id": f"{fid}#{k}" if len(segments) > 1 else fid, "object": obj.name},
            ))
    return traces


def _describe(label: LabelData, facts: list[tuple[int, list[Fact]]], s: int, e: int,
              opts: TraceOptions) -> tuple[str | None, list[str]]:
    """Explanation and categories of the segment `[s, e]` of an object whose answers by frame are `facts` (sorted).

    The explanation is the first text answer found on the object inside the segment, then elsewhere on the object,
    then in a frame-ranged classification overlapping the segment, then in a global one; the later groups are only
    looked at when the earlier ones have none.
    """
    in_seg = [f for n, fs in facts if s <= n <= e for f in fs]
    ranged = [f for ranges, fs in sorted(label.ranged, key=lambda r: r[0][0] if r[0] else (0, 0))
              if _overlaps(ranges, s, e) for f in fs] if label.ranged else []
    names = opts.explanation_names
    explanation = _first_text(in_seg, names)
    if explanation is None:
        explanation = _first_text([f for n, fs in facts if not s <= n <= e for f in fs], names)
    if explanation is None:
        explanation = _first_text(ranged, names) or _first_text(label.global_facts, names)
    choices = in_seg + ranged + (label.global_facts if opts.category_names is not None else [])
    categories = _dedupe([f.value for f in choices if f.kind == "choice" and wants(f, opts.category_names)])
    return explanation, categories


def _first_text(facts: list[Fact], names: frozenset[str] | None) -> str | None:
    for f in facts:
        if f.kind == "text" and (names is None or f.keys & names):
            text = clean_text(f.value)
            if text:
                return text
    return None
