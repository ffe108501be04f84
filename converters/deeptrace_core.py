"""Shared core of the DeeptraceReward converters (`labelbox_to_swift.py`, `deeptrace_to_swift.py`).

Conventions (converters/README.md has the full story):
- A *trace* is one contiguous segment `[s, e]` (inclusive, 1-based Labelbox frames) of one object.
- Boxes are `(x0, y0, x1, y1)` floats in source-video pixels, from Labelbox `{top, left, height, width}`.
  Inside a segment, boxes between two exported frames are linear tweens (Labelbox interpolation); before the first
  and after the last exported frame of the segment the nearest box is held. Never across a gap between segments.
- `bbox_mode="first"`: the box at frame `s`; `"union"`: the union of the boxes on every frame of `[s, e]`.
- start = (s − 1) / fps, end = e / fps (frame 1 starts at t = 0).
- Split: a video goes to train/val/test by `sha256(seed, video_id)` alone, so it never depends on other videos.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import unquote, urlparse

from common.errors import UserError
from common.jsonl import dumps, has_non_finite
from common.media import probe_video
from prompts import deeptrace as prompts

SPLITS = ("train", "val", "test")
VARIANTS = prompts.VARIANTS
BBOX_FORMATS = ("abs", "norm1000", "norm1")
VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
# The paper's nine major categories (sec. 2.3). Categories are passed through as annotated; this list is for docs,
# samples and stats ordering only.
PAPER_CATEGORIES = (
    "Object Distortion", "Sudden Blurring", "Object Trajectory", "Redundant Object", "Object Merging",
    "Object Splitting", "Background Distortion", "Object Disappearance", "Unexpected Move",
)

Box = tuple[float, float, float, float]
_NUMBER_TYPES = (int, float)


# --------------------------------------------------------------------------------------------------------------------
# Numbers and boxes


def number(value: Any, ctx: str, name: str, *, positive: bool = False, allow_none: bool = False) -> float | None:
    """A finite JSON number (not a bool); `UserError` naming `ctx` and `name` otherwise."""
    if type(value) in _NUMBER_TYPES and math.isfinite(value):  # the common case, fast
        if positive and value <= 0:
            raise UserError(f"{ctx}: {name} is {value!r}; it must be > 0")
        return float(value)
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise UserError(f"{ctx}: {name} is {value!r}, not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{ctx}: {name} is {value!r}, not a number")
    if positive and value <= 0:
        raise UserError(f"{ctx}: {name} is {value!r}; it must be > 0")
    return float(value)


def ltwh_box(bbox: Any, ctx: str | Callable[[], str]) -> Box:
    """Labelbox `{top, left, height, width}` (pixels) → `(x0, y0, x1, y1)`; a zero-area box is a `UserError`.

    `ctx` names the box in error messages; it may be a callable, so that hot loops only build it on error.
    """
    try:  # the common cases, fast: all floats, or ints and floats
        left, top, width, height = bbox["left"], bbox["top"], bbox["width"], bbox["height"]
        if (type(left) is float and type(top) is float and type(width) is float and type(height) is float
                and width > 0 and height > 0 and math.isfinite(left + top + width + height)):
            return (left, top, left + width, top + height)
        if (type(left) in _NUMBER_TYPES and type(top) in _NUMBER_TYPES and type(width) in _NUMBER_TYPES
                and type(height) in _NUMBER_TYPES and width > 0 and height > 0
                and math.isfinite(left + top + width + height)):
            return (float(left), float(top), float(left + width), float(top + height))
    except (KeyError, TypeError):
        pass
    ctx = ctx() if callable(ctx) else ctx
    if not isinstance(bbox, dict):
        raise UserError(f"{ctx}: bounding box is {type(bbox).__name__}, expected an object with top/left/height/width")
    vals = {}
    for key in ("left", "top", "width", "height"):
        if key not in bbox:
            raise UserError(f"{ctx}: bounding box has no '{key}'")
        vals[key] = number(bbox[key], ctx, f"bounding box {key}")
    if vals["width"] <= 0 or vals["height"] <= 0:
        raise UserError(f"{ctx}: zero-area bounding box (width {vals['width']:g}, height {vals['height']:g})")
    return (vals["left"], vals["top"], vals["left"] + vals["width"], vals["top"] + vals["height"])


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


def clip_box(box: Box, width: float, height: float) -> tuple[Box, bool]:
    """Clip to the frame; returns the box and whether anything changed."""
    width, height = float(width), float(height)
    x0, y0, x1, y1 = box
    if 0.0 <= x0 <= width and 0.0 <= x1 <= width and 0.0 <= y0 <= height and 0.0 <= y1 <= height:
        return (x0, y0, x1, y1), False  # inside: what the min/max below would give
    clipped = (min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
               min(max(box[2], 0.0), width), min(max(box[3], 0.0), height))
    return clipped, clipped != tuple(box)


def answer_bbox(box: Box, width: float, height: float, fmt: str) -> list[float]:
    if fmt == "abs":
        return list(box)
    scale = 1000.0 if fmt == "norm1000" else 1.0
    return [box[0] / width * scale, box[1] / height * scale, box[2] / width * scale, box[3] / height * scale]


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


def clean_text(text: str | None) -> str | None:
    text = " ".join((text or "").split())
    return text or None


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
class Trace:
    bbox: Box  # pixels, clipped to the frame
    start: float
    end: float | None
    explanation: str | None
    categories: list[str]
    frames: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # trace_id, label_id, … (copied into meta)


@dataclass
class Video:
    video_id: str
    label: str  # "fake" | "real"
    path: str  # absolute, as written into the sample's `videos`
    width: int
    height: int
    fps: float
    duration: float
    source: str | None = None
    traces: list[Trace] = field(default_factory=list)
    split: str | None = None  # forced split (released data); None → the split rule decides
    extra: dict[str, Any] = field(default_factory=dict)


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


# --------------------------------------------------------------------------------------------------------------------
# Media


def _url_name(row_data: str) -> str | None:
    parsed = urlparse(row_data)
    path = unquote(parsed.path) if parsed.scheme else row_data
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name or None


class MediaResolver:
    """Maps a video's identifiers to a local file under one of the media roots."""

    def __init__(self, roots: Sequence[Path]):
        for root in roots:
            if not Path(root).is_dir():
                raise UserError(f"{root}: --media-root directory not found")
        self.roots = [os.path.abspath(r) for r in roots]
        self._prefixes = [r if r.endswith(os.sep) else r + os.sep for r in self.roots]

    def find(self, names: Sequence[str | None], row_data: str | None = None) -> tuple[str | None, list[str]]:
        """The first of `names` (then the file named by `row_data`) found under a root; absolute, not resolved,
        normalised as `str(Path(…))` would (a str, not a Path: making one costs as much as the lookup)."""
        first = names[0] if names else None
        if isinstance(first, str) and first.strip():  # the usual hit, without the search's bookkeeping
            hit = self._lookup(first)
            if hit is not None:
                return hit, [first]
        tried: list[str] = []
        for name in self._candidates(names, row_data):
            if name in tried:
                continue
            tried.append(name)
            hit = self._lookup(name)
            if hit is not None:
                return hit, tried
        return None, tried

    @staticmethod
    def _candidates(names: Sequence[str | None], row_data: str | None) -> Iterator[str]:
        yield from (n for n in names if isinstance(n, str) and n.strip())
        if isinstance(row_data, str) and row_data:
            parsed = urlparse(row_data)
            if parsed.scheme == "file":
                yield unquote(parsed.path)
            elif not parsed.scheme or len(parsed.scheme) == 1:  # a plain path (or a Windows drive letter)
                yield row_data
            url_name = _url_name(row_data)
            if url_name:
                yield url_name

    def _lookup(self, name: str) -> str | None:
        """One stat per candidate file (not a cached directory listing: that would grow with the media folder)."""
        if os.path.isabs(name):
            return str(Path(name)) if os.path.isfile(name) else None
        flat = "/" not in name and os.sep not in name
        # os.path.splitext(name)[1] != "", spelled out: a dot after the base name's leading dots
        exts = ("",) if "." in name[name.rfind("/") + 1:].lstrip(".") else ("", *VIDEO_EXTS)
        for prefix in self._prefixes:
            for ext in exts:
                path = prefix + name + ext  # os.path.join(root, name + ext), name being relative
                if os.path.isfile(path):
                    return path if flat else os.path.abspath(path)  # both already normalised
        return None


def _attr(attrs: dict, keys: tuple[str, ...]) -> Any:
    """The first of `keys` that `attrs` gives a non-null value for."""
    for k in keys:
        value = attrs.get(k)
        if value is not None:
            return value
    return None


def media_geometry(attrs: dict, path: str | Path, ctx: str) -> tuple[int, int, float, float, bool]:
    """`(width, height, fps, duration, probed)` from export attributes, probing the file for what they lack."""
    w, h, f, c, d = (attrs.get("width"), attrs.get("height"), attrs.get("frame_rate"), attrs.get("frame_count"),
                     attrs.get("duration"))
    if (type(w) in _NUMBER_TYPES and type(h) in _NUMBER_TYPES and type(f) in _NUMBER_TYPES
            and type(c) in _NUMBER_TYPES and type(d) in _NUMBER_TYPES and w > 0 and h > 0 and f > 0 and c > 0
            and d > 0 and math.isfinite(w + h + f + c + d)):  # all given, as plain numbers: what the rest would say
        return int(round(float(w))), int(round(float(h))), float(f), float(d), False
    width = number(_attr(attrs, ("width", "video_width")), ctx, "media width", positive=True, allow_none=True)
    height = number(_attr(attrs, ("height", "video_height")), ctx, "media height", positive=True, allow_none=True)
    fps = number(_attr(attrs, ("frame_rate", "frameRate", "fps", "video_frame_rate")), ctx, "frame rate",
                 positive=True, allow_none=True)
    count = number(_attr(attrs, ("frame_count", "frameCount", "video_frame_count")), ctx, "frame count",
                   positive=True, allow_none=True)
    duration = number(_attr(attrs, ("duration", "video_duration")), ctx, "duration", positive=True,
                      allow_none=True)
    if duration is None and count is not None and fps is not None:
        duration = count / fps
    probed = False
    if None in (width, height, fps, duration):
        lacking = [n for n, v in (("width", width), ("height", height), ("frame rate", fps),
                                  ("duration or frame count", duration)) if v is None]
        try:
            info = probe_video(path)
        except UserError as exc:
            raise UserError(f"{ctx}: the export gives no {', '.join(lacking)} and the video cannot be probed "
                            f"({exc})") from None
        if not 0 < info.fps < math.inf or info.width <= 0 or info.height <= 0:
            raise UserError(f"{ctx}: the export gives no {', '.join(lacking)} and {path} reports none")
        width = width or info.width
        height = height or info.height
        fps = fps or info.fps
        duration = duration or info.duration
        probed = True
    return int(round(width)), int(round(height)), float(fps), float(duration), probed


def scan_real_videos(dirs: Sequence[Path], progress: bool = True) -> list[Video]:
    """Every video file under the `--real-videos` directories, probed; id = path relative to its directory."""
    from tqdm import tqdm

    found: dict[str, Path] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise UserError(f"{d}: --real-videos directory not found")
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
        if not files:
            raise UserError(f"{d}: no video files ({', '.join(VIDEO_EXTS)}) in --real-videos directory")
        for p in files:
            vid = p.relative_to(d).as_posix()
            if vid in found:
                raise UserError(f"{p}: real video id {vid!r} also names {found[vid]}; rename one of them")
            found[vid] = p
    videos = []
    for vid, p in tqdm(found.items(), desc="probing real videos", unit="video", disable=None if progress else True):
        info = probe_video(p)
        if not 0 < info.fps < math.inf or info.width <= 0 or info.height <= 0 or info.frame_count <= 0:
            raise UserError(f"{p}: cannot read size, frame rate or frame count of this real video")
        videos.append(Video(video_id=vid, label="real", path=os.path.abspath(p), width=info.width,
                            height=info.height, fps=info.fps, duration=info.duration))
    return videos


# --------------------------------------------------------------------------------------------------------------------
# Split


def split_fraction(video_id: str, seed: int) -> float:
    """A uniform number in [0, 1) that depends only on (seed, video_id)."""
    digest = hashlib.sha256(f"{seed}\x00{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class SplitRule:
    """`train:val:test` ratios; a video's split is decided by `split_fraction(video_id, seed)` alone."""

    def __init__(self, ratios: Sequence[float], seed: int = 0):
        total = float(sum(ratios))
        self.ratios = [r / total for r in ratios]
        self.seed = seed
        self.cuts = (ratios[0] / total, 1.0 if ratios[2] == 0 else (ratios[0] + ratios[1]) / total)

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> SplitRule:
        parts = text.split(":")
        try:
            ratios = [float(p) for p in parts]
        except ValueError:
            ratios = []
        if len(ratios) != 3 or any(not math.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
            raise UserError(f"--split {text!r}: expected three non-negative ratios train:val:test, e.g. 8:1:1")
        return cls(ratios, seed)

    def assign(self, video_id: str) -> str:
        u = split_fraction(video_id, self.seed)
        return "train" if u < self.cuts[0] else "val" if u < self.cuts[1] else "test"

    def describe(self) -> dict:
        return {"rule": "sha256(seed, video_id)", "ratios": [round(r, 6) for r in self.ratios], "seed": self.seed}


# --------------------------------------------------------------------------------------------------------------------
# Samples and the output directory


@functools.cache
def _question(variant: str) -> str:
    return prompts.question(variant)


def build_samples(video: Video, trace: Trace | None, variants: Sequence[str], fmt: str, split: str) -> list[dict]:
    """The sample records of one trace of `video` (None: its REAL sample), one per variant, in `variants`' order.

    A record is `{"messages": [question, answer], "videos": [path], "meta": {…}}`; meta ends with `frames` (when
    the trace has them), then `video.extra`, then `trace.extra`.
    """
    if trace is None:
        answers = [prompts.REAL_ANSWER] * len(variants)
        bbox = start = end = explanation = None
        categories: list[str] = []
        extra = video.extra
    else:
        coords = answer_bbox(trace.bbox, video.width, video.height, fmt)
        decimals = 3 if fmt == "norm1" else 0
        answers = prompts.fake_answers(coords, trace.start, trace.explanation, variants, bbox_decimals=decimals)
        bbox = [round(v, 3) for v in trace.bbox]
        start = round(trace.start, 6)
        end = None if trace.end is None else round(trace.end, 6)
        explanation = trace.explanation
        categories = list(trace.categories)
        extra = {**video.extra, **trace.extra}
    meta = {"task": "deeptrace", "video_id": video.video_id, "label": video.label, "bbox": bbox, "start": start,
            "end": end, "width": video.width, "height": video.height, "duration": round(video.duration, 6),
            "fps": round(video.fps, 6), "explanation": explanation, "categories": categories, "source": video.source,
            "variant": None, "bbox_format": "pixels", "answer_bbox_format": fmt, "split": split}
    if trace is not None and trace.frames:
        meta["frames"] = list(trace.frames)
    videos = [str(video.path)]
    return [{"messages": [{"role": "user", "content": _question(variant)}, {"role": "assistant", "content": answer}],
             "videos": videos, "meta": {**meta, "variant": variant, **extra}}
            for variant, answer in zip(variants, answers, strict=True)]


def _check_finite(video: Video, trace: Trace | None, ctx: str) -> None:
    """Raise unless every float a sample of `trace` holds is finite (`dumps` would write NaN and Infinity, which
    JSON has no words for; media_geometry and the trace builders refuse them, so this is a last guard)."""
    numbers = [video.fps, video.duration] if trace is None else [video.fps, video.duration, *trace.bbox, trace.start,
                                                                 0.0 if trace.end is None else trace.end]
    try:
        finite = all(map(math.isfinite, numbers))
    except (TypeError, OverflowError):  # not all numbers, or an int beyond floats
        finite = not has_non_finite(numbers)
    if not finite or has_non_finite(video.extra) or (trace is not None and has_non_finite(trace.extra)):
        raise UserError(f"{ctx}: video {video.video_id}: a number of its sample is not finite (fps {video.fps}, "
                        f"duration {video.duration}"
                        + (f", trace {trace.bbox} from {trace.start} to {trace.end}" if trace else "") + ")")


class WriterPart(NamedTuple):
    """The samples and counts of a run of videos, written in memory by a worker (`DatasetWriter.part`)."""

    texts: dict[tuple[str, str], str]  # (variant, split) → JSONL lines
    counts: dict[str, dict]
    categories: dict[str, Counter]
    videos: dict[int, int]  # as DatasetWriter.videos


_WRITE_BUFFER = 1 << 18  # bytes per output file: fewer, larger writes than io's 8 KiB default


def _counts() -> dict:
    return {"samples": 0, "fake_samples": 0, "real_samples": 0, "fake_videos": 0, "real_videos": 0,
            "with_explanation": 0, "with_categories": 0}


def _add_counts(into: dict, counts: dict) -> None:
    for k, v in counts.items():
        into[k] += v


class DatasetWriter:
    """Streams samples into `out/[<variant>/]{train,val,test}.jsonl` + `stats.json`, all-or-nothing.

    Everything is written into a hidden staging directory beside `out`; `commit()` moves it into place (a single
    rename when `out` does not exist yet), `abort()` (or any exception inside `with`) deletes it.
    """

    def __init__(self, out: Path | None, variants: Sequence[str], bbox_format: str, split_rule: SplitRule | None,
                 *, subdirs: bool):
        self.variants = list(variants)
        self.subdirs = subdirs
        self.bbox_format = bbox_format
        self.split_rule = split_rule
        self.files: dict[tuple[str, str], IO[str]] = {}
        self.out = self.staging = None
        if out is None:  # in memory: one part of the dataset, for a worker process (`part`, `merge`)
            for v in self.variants:
                for s in SPLITS:
                    self.files[v, s] = io.StringIO()
        else:
            self.out = Path(out)
            if self.out.exists() and not self.out.is_dir():
                raise UserError(f"{self.out}: --out exists and is not a directory")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.staging, 0o777 & ~umask)  # mkdtemp makes it 0700; the output should get the usual mode
            for v in self.variants:
                d = self.staging / v if subdirs else self.staging
                d.mkdir(parents=True, exist_ok=True)
                for s in SPLITS:
                    self.files[v, s] = (d / f"{s}.jsonl").open("w", encoding="utf-8", buffering=_WRITE_BUFFER)
        self.counts = {s: _counts() for s in SPLITS}
        self.categories: dict[str, Counter] = {s: Counter() for s in SPLITS}
        # hash(video_id) → split index * 2 + (1 if real): ~100 bytes a video, whatever the rows hold
        self.videos: dict[int, int] = {}

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def split_of(self, video: Video, ctx: str) -> str:
        split = video.split or (self.split_rule.assign(video.video_id) if self.split_rule else None)
        if split not in SPLITS:
            raise UserError(f"{ctx}: video {video.video_id} has no split")
        known = self.videos.get(hash(video.video_id))
        if known is not None:
            if SPLITS[known // 2] != split:
                raise UserError(f"{ctx}: video {video.video_id} is in split {split!r} here and "
                                f"{SPLITS[known // 2]!r} earlier; a video must stay in one split")
            if ("real" if known % 2 else "fake") != video.label:
                raise UserError(f"{ctx}: video {video.video_id} is {video.label} here and "
                                f"{'real' if known % 2 else 'fake'} earlier")
        return split

    def has(self, video_id: str) -> bool:
        return hash(video_id) in self.videos

    def add(self, video: Video, ctx: str) -> str:
        split = self.split_of(video, ctx)
        label = video.label
        fake = label == "fake"
        items: list[Trace | None] = list(video.traces) if fake else [None]
        for trace in items:
            _check_finite(video, trace, ctx)
        key = hash(video.video_id)
        new = key not in self.videos
        self.videos[key] = SPLITS.index(split) * 2 + (label == "real")
        c = self.counts[split]
        if new:
            c[label + "_videos"] += 1
        files = [self.files[v, split] for v in self.variants]
        for trace in items:
            for fh, record in zip(files, build_samples(video, trace, self.variants, self.bbox_format, split),
                                  strict=True):
                fh.write(dumps(record, finite=True) + "\n")
        c["samples"] += len(items)
        c[label + "_samples"] += len(items)
        if fake:
            categories = self.categories[split]
            for trace in items:
                c["with_explanation"] += trace.explanation is not None
                if trace.categories:
                    c["with_categories"] += 1
                    for category in trace.categories:
                        categories[category] += 1
        return split

    def part(self) -> WriterPart:
        """What an in-memory writer holds (`DatasetWriter(None, …)`), for `merge` into the writer of the output."""
        texts = {key: fh.getvalue() for key, fh in self.files.items()}  # type: ignore[attr-defined]
        return WriterPart(texts, self.counts, self.categories, self.videos)

    def merge(self, part: WriterPart) -> bool:
        """Append `part` (the samples of the videos that follow all added so far) as if each were `add`ed here.

        False, with nothing changed, when `part` has a video already written (for the caller to redo the work in
        one pass, where `has` finds it at its row).
        """
        if not self.videos.keys().isdisjoint(part.videos):
            return False
        for key, text in part.texts.items():
            if text:
                self.files[key].write(text)
        for s in SPLITS:
            _add_counts(self.counts[s], part.counts[s])
            self.categories[s].update(part.categories[s])
        self.videos.update(part.videos)
        return True

    def stats(self) -> dict:
        total = _counts()
        for c in self.counts.values():
            _add_counts(total, c)
        cats = {s: dict(self.categories[s].most_common()) for s in SPLITS}
        cats["total"] = dict(sum(self.categories.values(), Counter()).most_common())
        return {"splits": self.counts, "total": total, "categories": cats}

    def commit(self, stats: dict) -> None:
        for fh in self.files.values():
            fh.close()
        for v in self.variants:
            d = self.staging / v if self.subdirs else self.staging
            with (d / "stats.json").open("w", encoding="utf-8") as fh:  # the staging directory makes it atomic
                json.dump({**stats, "variant": v}, fh, ensure_ascii=False, indent=2)
                fh.write("\n")
        if not self.out.exists():
            os.rename(self.staging, self.out)
            return
        for src in sorted(p for p in self.staging.rglob("*") if p.is_file()):
            dest = self.out / src.relative_to(self.staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        for fh in self.files.values():
            fh.close()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def format_counts(stats: dict) -> str:
    parts = []
    for s in SPLITS:
        c = stats["splits"][s]
        parts.append(f"{s} {c['samples']} ({c['fake_samples']} fake traces on {c['fake_videos']} videos, "
                     f"{c['real_samples']} real)")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------------------------
# Command-line pieces shared by both converters


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad flag becomes a `UserError` (`prog: error: …`, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see --help)")


ADJUST_KEYS = ("boxes_clipped", "segments_inferred_first_to_last_frame", "videos_probed_for_media_attributes")


def report(counter: Counter, skip_keys: Sequence[str]) -> dict:
    """stats.json's `skipped` (what was left out, and why) and `adjusted` (what was fixed up) sections."""
    skipped = {k: counter.get(k, 0) for k in skip_keys}
    adjusted = {k: counter.get(k, 0) for k in ADJUST_KEYS}
    adjusted.update({k: v for k, v in sorted(counter.items()) if k not in skip_keys and k not in adjusted
                     and k != "rows_read"})
    return {"rows_read": counter.get("rows_read", 0), "skipped": skipped, "adjusted": adjusted}


def add_output_args(parser: argparse.ArgumentParser, *, split_default: str = "8:1:1") -> None:
    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output directory: train.jsonl, val.jsonl, test.jsonl and stats.json (with --variant all: "
                        "one such directory per variant, DIR/<variant>/)")
    g.add_argument("--variant", default="full", choices=(*VARIANTS, "all"),
                   help="supervision ablation of the paper (default: full); 'all' writes every variant")
    g.add_argument("--bbox-format", default="abs", choices=BBOX_FORMATS,
                   help="coordinates in the answer: abs = source pixels (paper), norm1000 = 0-1000 grid "
                        "(Qwen2-VL/Qwen3-VL/VideoLLaMA3 style), norm1 = 0-1 with 3 decimals (default: abs). "
                        "meta.bbox is always source pixels")
    g.add_argument("--split", default=split_default, metavar="TRAIN:VAL:TEST",
                   help=f"split ratios by unique video (default: {split_default}); a video's split depends only on "
                        "its id and --seed")
    g.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    g = parser.add_argument_group("real videos and checks")
    g.add_argument("--real-videos", type=Path, action="append", default=[], metavar="DIR",
                   help="directory of real clips (searched recursively), each becomes one REAL sample; its size, "
                        "fps and duration are probed. Repeatable")
    g.add_argument("--real-source", default=None, metavar="NAME",
                   help="meta.source for the real clips (e.g. LLaVA-Video-178K)")
    g.add_argument("--skip-missing", action="store_true",
                   help="skip videos whose file is missing (listed in stats.json) instead of failing")
    g.add_argument("--strict", action="store_true",
                   help="fail on boxes outside the frame and segments without a box instead of clipping/skipping "
                        "and counting them")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def output_variants(variant: str) -> tuple[list[str], bool]:
    return (list(VARIANTS), True) if variant == "all" else ([variant], False)


def missing_media_error(missing: list[dict], roots: Sequence[Path]) -> UserError:
    shown = ", ".join(f"{m['video_id']} ({m['where']})" for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    where = ", ".join(str(r) for r in roots)
    return UserError(f"{len(missing)} video file(s) not found under {where}: {shown}{more} "
                     "(set --media-root, or pass --skip-missing to skip them)")
