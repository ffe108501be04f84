"""The dataset writer of the DeeptraceReward converters: videos and their traces → ms-swift JSONL samples.

It knows nothing of the input format: a converter builds `Video`s (with `Trace`s) and adds them; the writer decides
each video's split, renders the samples (prompts/deeptrace), writes `out/[<variant>/]{train,val,test}.jsonl` and
`stats.json` as one unit, and counts what it wrote.
- Split: a video goes to train/val/test by `sha256(seed, video_id)` alone, so it never depends on other videos.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from common.errors import UserError
from common.jsonl import dumps, has_non_finite
from converters.boxes import Box
from prompts import deeptrace as prompts

SPLITS = ("train", "val", "test")
VARIANTS = prompts.VARIANTS
BBOX_FORMATS = ("abs", "norm1000", "norm1")
# The paper's nine major categories (sec. 2.3). Categories are passed through as annotated; this list is for docs,
# samples and stats ordering only.
PAPER_CATEGORIES = (
    "Object Distortion", "Sudden Blurring", "Object Trajectory", "Redundant Object", "Object Merging",
    "Object Splitting", "Background Distortion", "Object Disappearance", "Unexpected Move",
)


# --------------------------------------------------------------------------------------------------------------------
# What a converter hands the writer


def answer_bbox(box: Box, width: float, height: float, fmt: str) -> list[float]:
    if fmt == "abs":
        return list(box)
    scale = 1000.0 if fmt == "norm1000" else 1.0
    return [box[0] / width * scale, box[1] / height * scale, box[2] / width * scale, box[3] / height * scale]


def clean_text(text: str | None) -> str | None:
    text = " ".join((text or "").split())
    return text or None


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

    def __init__(self, out: Path, variants: Sequence[str], bbox_format: str, split_rule: SplitRule | None,
                 *, subdirs: bool):
        self.variants = list(variants)
        self.subdirs = subdirs
        self.bbox_format = bbox_format
        self.split_rule = split_rule
        self.files: dict[tuple[str, str], IO[str]] = {}
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
        shutil.rmtree(self.staging, ignore_errors=True)


def format_counts(stats: dict) -> str:
    parts = []
    for s in SPLITS:
        c = stats["splits"][s]
        parts.append(f"{s} {c['samples']} ({c['fake_samples']} fake traces on {c['fake_videos']} videos, "
                     f"{c['real_samples']} real)")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------------------------
# Command-line pieces shared by the converters that use this writer


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
