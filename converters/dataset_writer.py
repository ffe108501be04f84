"""The dataset writer of the DeeptraceReward converters: videos and their traces → ms-swift JSONL samples.

It knows nothing of the input format: a converter builds `Video`s (with `Trace`s) and adds them; the writer decides
each video's split, renders the samples (prompts/deeptrace), writes `out/[<variant>/]{train,val,test}.jsonl`,
`stats.json` and a manifest (`.dataset-files.json`) as one unit, and counts what it wrote (converters/README.md:
"Split rule", "Output").
- Split: a video's split is `sha256(seed, video_id)` alone (or the split its input gives), decided per media file:
  a video whose file (`Video.file_key`, see media_files.file_identity) an earlier video already uses takes that
  video's split, and is counted.
- Output folder: everything is staged in a hidden folder beside `out`, then swapped in by renames in an order that a
  kill cannot make look complete; files of the previous run that this run no longer writes are removed (listed in
  its manifest), a user's other files never.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import math
import os
import re
import shutil
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from common.errors import UserError, os_error_line
from common.jsonl import dumps, has_non_finite
from common.outputs import manifest_files, temp_dir_beside, write_manifest
from converters.boxes import Box
from prompts import deeptrace as prompts
from prompts.deeptrace_categories import CategoryMap, load_category_map

SPLITS = ("train", "val", "test")
VARIANTS = prompts.VARIANTS


# --------------------------------------------------------------------------------------------------------------------
# What a converter hands the writer


def clean_text(text: str | None) -> str | None:
    text = " ".join((text or "").split())
    return text or None


@dataclass
class Trace:
    bbox: Box  # pixels, clipped to the frame
    start: float
    end: float | None
    explanation: str | None
    tags: list[str]  # the raw category tags, as annotated (meta.tags); the writer maps them (meta.categories)
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
    file_key: int | None = None  # the file's identity (media_files.file_identity); None: its path


INVALID_KEYS = ("traces_starting_after_clip_end", "traces_ending_after_clip_end")


def outside_clip(start: float, end: float | None, duration: float, fps: float, skip_invalid: bool, stats: Counter,
                 where: Callable[[], str]) -> bool:
    """Whether a trace from `start` to `end` seconds lies after the end of its clip (`duration`, from the export or
    the probed file) by more than one frame: then, with `skip_invalid`, it is counted by reason in `stats` (True: leave
    it out); without, it is a `UserError` naming `where()` and the numbers. A trace within its clip: False."""
    limit = duration + 1 / fps + 1e-9
    if start <= limit and (end is None or end <= limit):
        return False
    starts = start > limit
    if skip_invalid:
        stats[INVALID_KEYS[0] if starts else INVALID_KEYS[1]] += 1
        return True
    span = f"{start:.3f}-{end:.3f} s" if end is not None else f"from {start:.3f} s"
    raise UserError(f"{where()} ({span}) {'starts' if starts else 'ends'} after its clip ({duration:.3f} s, "
                    f"{duration * fps:.4g} frames at {fps:.4g} fps; one frame of tolerance); pass --skip-invalid to "
                    "leave such traces out")


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
def _question(variant: str, fmt: str) -> str:
    return prompts.question(variant, fmt)


def build_samples(video: Video, trace: Trace | None, variants: Sequence[str], fmt: str, split: str,
                  categories: Sequence[str] = ()) -> list[dict]:
    """The sample records of one trace of `video` (None: its REAL sample), one per variant, in `variants`' order;
    `categories` are the trace's tags mapped (`CategoryMap.map`).

    A record is `{"messages": [question, answer], "videos": [path], "meta": {…}}`; meta ends with `frames` (when
    the trace has them), then `video.extra`, then `trace.extra`.
    """
    if trace is None:
        answers = [prompts.REAL_ANSWER] * len(variants)
        bbox = start = end = explanation = None
        tags: list[str] = []
        extra = video.extra
    else:
        coords = prompts.answer_box(trace.bbox, fmt, video.width, video.height)
        answers = prompts.fake_answers(coords, trace.start, trace.explanation, variants, fmt)
        bbox = [round(v, 3) for v in trace.bbox]
        start = round(trace.start, 6)
        end = None if trace.end is None else round(trace.end, 6)
        explanation = trace.explanation
        tags = list(trace.tags)
        extra = {**video.extra, **trace.extra}
    meta = {"task": "deeptrace", "video_id": video.video_id, "label": video.label, "bbox": bbox, "start": start,
            "end": end, "width": video.width, "height": video.height, "duration": round(video.duration, 6),
            "fps": round(video.fps, 6), "explanation": explanation, "categories": list(categories), "tags": tags,
            "source": video.source, "variant": None, "bbox_format": "pixels", "answer_bbox_format": fmt,
            "split": split}
    if trace is not None and trace.frames:
        meta["frames"] = list(trace.frames)
    videos = [str(video.path)]
    return [{"messages": [{"role": "user", "content": _question(variant, fmt)},
                          {"role": "assistant", "content": answer}],
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
MANIFEST = ".dataset-files.json"  # in --out: the files of the run (common/outputs.py's manifest format)
TOOLS = ("labelbox_to_swift", "deeptrace_to_swift")  # the writers of such manifests: another one's is not ours


def _counts() -> dict:
    return {"samples": 0, "fake_samples": 0, "real_samples": 0, "fake_videos": 0, "real_videos": 0,
            "with_explanation": 0, "with_categories": 0}


def _add_counts(into: dict, counts: dict) -> None:
    for k, v in counts.items():
        into[k] += v


def staging_pattern(out: Path) -> re.Pattern[str]:
    """Names of the staging folders of runs on `out` (common.outputs.temp_dir_beside: `.OUT.<8 hex>.tmp`)."""
    return re.compile(rf"\.{re.escape(out.name)}\.[0-9a-f]{{8}}\.tmp")


def _lock(path: Path) -> int:
    """A file descriptor holding an exclusive lock on the folder `path` (released when closed or the process ends,
    even by kill -9); OSError (BlockingIOError) when another process holds it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def remove_stale_staging(out: Path) -> list[str]:
    """Remove the staging folders that killed runs on `out` left (a live run's is locked, and kept)."""
    removed = []
    pattern = staging_pattern(out)
    try:
        names = os.listdir(out.parent)
    except OSError:
        return removed
    for name in sorted(names):
        path = out.parent / name
        if not pattern.fullmatch(name) or path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = _lock(path)
        except OSError:
            continue  # a run in progress
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(name)
    return removed


def read_manifest(out: Path) -> list[str] | None:
    """The files the previous run on `out` wrote (relative paths), from its manifest; None without one."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        owner = json.loads(path.read_text(encoding="utf-8")).get("written_by")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        owner = None
    if owner not in TOOLS:
        raise UserError(f"--out {out}: its {MANIFEST} was not written by a DeeptraceReward converter, whose files it "
                        "would replace: choose another --out")
    return sorted(manifest_files(out, MANIFEST, "--out") or ())


class DatasetWriter:
    """Streams samples into `out/[<variant>/]{train,val,test}.jsonl` + `stats.json` + the manifest, all or nothing.

    Everything is written into a hidden staging folder beside `out` (locked while the run lives; staging folders of
    killed runs are removed when the next run on `out` starts); `commit()` swaps it in (see `_swap_in`), `abort()`
    (or any exception inside `with`) deletes it.
    """

    def __init__(self, out: Path, variants: Sequence[str], bbox_format: str, split_rule: SplitRule | None,
                 *, subdirs: bool, tool: str = "labelbox_to_swift", category_map: CategoryMap | None = None):
        self.variants = list(variants)
        self.subdirs = subdirs
        self.bbox_format = bbox_format
        self.split_rule = split_rule
        self.tool = tool
        self.category_map = category_map or load_category_map()
        self.files: dict[tuple[str, str], IO[str]] = {}
        self.out = Path(out)
        self.staging: Path | None = None
        self._lock_fd: int | None = None
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"{self.out}: --out exists and is not a directory")
        if self.out.is_dir():
            read_manifest(self.out)  # refuse a foreign manifest now, before the work
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(self.out)
            self.staging = temp_dir_beside(self.out)  # with the mode mkdir gives, not mkdtemp's 0700
            self._lock_fd = _lock(self.staging)
            for v in self.variants:
                d = self.staging / v if subdirs else self.staging
                d.mkdir(parents=True, exist_ok=True)
                for s in SPLITS:
                    self.files[v, s] = (d / f"{s}.jsonl").open("w", encoding="utf-8", buffering=_WRITE_BUFFER)
        except OSError as exc:
            self.abort()
            raise UserError(f"--out {self.out}: cannot write the output folder here ({os_error_line(exc)})") from None
        self.counts = {s: _counts() for s in SPLITS}
        self.categories: dict[str, Counter] = {s: Counter() for s in SPLITS}  # traces per category
        self.unmapped: Counter = Counter()  # traces per tag that no category of the map covers
        # hash(video_id) → (split index wanted × 3 + split index given) × 2 + 1 if real (`_unpack`); hash(file_key)
        # → hash(video_id) of the file's first video: ~150 bytes a video, whatever the rows hold
        self.videos: dict[int, int] = {}
        self.media: dict[int, int] = {}
        self.shared = Counter()  # videos_sharing_a_file, videos_moved_to_the_split_of_their_file

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def split_of(self, video: Video, ctx: str) -> str:
        """The split of `video`: its file's, when an earlier video uses the same file (counted), else its own."""
        wanted = video.split or (self.split_rule.assign(video.video_id) if self.split_rule else None)
        if wanted not in SPLITS:
            raise UserError(f"{ctx}: video {video.video_id} has no split")
        want, real = SPLITS.index(wanted), int(video.label == "real")
        vkey = hash(video.video_id)
        known = self.videos.get(vkey)
        if known is not None:
            known_want, known_split, known_real = _unpack(known)
            if known_want != want:
                raise UserError(f"{ctx}: video {video.video_id} is in split {wanted!r} here and "
                                f"{SPLITS[known_want]!r} earlier; a video must stay in one split")
            if known_real != real:
                raise UserError(f"{ctx}: video {video.video_id} is {video.label} here and "
                                f"{'real' if known_real else 'fake'} earlier")
        fkey = hash(video.file_key if video.file_key is not None else video.path)
        owner = self.media.get(fkey)
        if owner is None:  # a new file
            split = known_split if known is not None else want
            self.media[fkey] = vkey
        else:
            _, split, file_real = _unpack(self.videos[owner])
            if file_real != real:
                fake, other = ("real", "fake") if real else ("fake", "real")
                raise UserError(f"{ctx}: {video.path} is the clip of {fake} video {video.video_id} and of a {other} "
                                "video before it (the same file, or identical bytes); a clip cannot be both")
            if known is None:  # a new video in the file of an earlier one: it joins that one's split
                self.shared["videos_sharing_a_file"] += 1
                if split != want:
                    self.shared["videos_moved_to_the_split_of_their_file"] += 1
            elif split != known_split:
                raise UserError(f"{ctx}: {video.path} is also the file of a video in split {SPLITS[split]!r}, while "
                                f"video {video.video_id} is in {SPLITS[known_split]!r}: one file in two splits")
        if known is None:
            self.videos[vkey] = (want * 3 + split) * 2 + real
        return SPLITS[split]

    def has(self, video_id: str) -> bool:
        return hash(video_id) in self.videos

    def add(self, video: Video, ctx: str) -> str:
        label = video.label
        fake = label == "fake"
        items: list[Trace | None] = list(video.traces) if fake else [None]
        for trace in items:
            _check_finite(video, trace, ctx)
        new = hash(video.video_id) not in self.videos
        split = self.split_of(video, ctx)
        c = self.counts[split]
        if new:
            c[label + "_videos"] += 1
        files = [self.files[v, split] for v in self.variants]
        categories = self.categories[split]
        for trace in items:
            mapped: list[str] = []
            if trace is not None:
                c["with_explanation"] += trace.explanation is not None
                if trace.tags:
                    mapped, unmapped = self.category_map.map(trace.tags)
                    c["with_categories"] += 1
                    for name in mapped:
                        categories[name] += 1
                    for tag in unmapped:
                        self.unmapped[tag] += 1
            for fh, record in zip(files, build_samples(video, trace, self.variants, self.bbox_format, split, mapped),
                                  strict=True):
                fh.write(dumps(record, finite=True) + "\n")
        c["samples"] += len(items)
        c[label + "_samples"] += len(items)
        return split

    def stats(self) -> dict:
        total = _counts()
        for c in self.counts.values():
            _add_counts(total, c)
        order = {name: i for i, name in enumerate(self.category_map.names)}  # the map's (paper's) order, then the rest

        def ordered(counter: Counter) -> dict[str, int]:
            return dict(sorted(counter.items(), key=lambda kv: (order.get(kv[0], len(order)), -kv[1], kv[0])))

        cats = {s: ordered(self.categories[s]) for s in SPLITS}
        cats["total"] = ordered(sum(self.categories.values(), Counter()))
        cats["map"] = self.category_map.source
        cats["unmapped_tags"] = dict(sorted(self.unmapped.items(), key=lambda kv: (-kv[1], kv[0])))
        files = {"identity": "size and first 64 KiB", "videos": len(self.videos), "files": len(self.media),
                 "videos_sharing_a_file": self.shared["videos_sharing_a_file"],
                 "videos_moved_to_the_split_of_their_file": self.shared["videos_moved_to_the_split_of_their_file"]}
        return {"splits": self.counts, "total": total, "categories": cats, "media_files": files}

    def commit(self, stats: dict) -> None:
        """Write stats.json (one per variant) and the manifest, then swap the staged run in."""
        assert self.staging is not None
        for fh in self.files.values():
            fh.close()
        written = []
        for v in self.variants:
            d = self.staging / v if self.subdirs else self.staging
            with (d / "stats.json").open("w", encoding="utf-8") as fh:  # the staging directory makes it atomic
                json.dump({**stats, "variant": v}, fh, ensure_ascii=False, indent=2)
                fh.write("\n")
            written += [(d / name).relative_to(self.staging).as_posix() for name in (*SPLIT_FILES, "stats.json")]
        write_manifest(self.staging, MANIFEST, self.tool, set(written))
        try:
            self._swap_in(written)
        finally:
            self._unlock()

    def _swap_in(self, written: list[str]) -> None:
        """Move the staged run into `out`. A new `out` is one rename. Into an existing one, the order makes a
        killed swap look incomplete, never complete: the previous run's manifest, then its stats.json files (what
        says "complete") go first, then its files that this run does not write; then the new JSONL files move in,
        then the new stats.json files, and the new manifest last."""
        assert self.staging is not None
        if not self.out.exists():
            os.rename(self.staging, self.out)
            self.staging = None
            return
        old = read_manifest(self.out) or []  # none: a folder of the user's, or of a run before manifests
        new = set(written)
        _remove_file(self.out / MANIFEST)
        for f in dict.fromkeys([*old, *written]):  # the stats.json this run overwrites go first too
            if f.rsplit("/", 1)[-1] == "stats.json":
                _remove_file(self.out / f)
        for f in old:
            if f not in new:
                _remove_file(self.out / f)
        data = [f for f in written if not f.endswith("stats.json")]
        for f in [*data, *(f for f in written if f.endswith("stats.json")), MANIFEST]:
            dest = self.out / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / f, dest)
        for d in sorted({str(Path(f).parent) for f in old if f not in new} - {"."}, key=len, reverse=True):
            try:
                os.rmdir(self.out / d)  # only when the previous run's files were all it held
            except OSError:
                pass
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging = None

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def abort(self) -> None:
        for fh in self.files.values():
            fh.close()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._unlock()


SPLIT_FILES = tuple(f"{s}.jsonl" for s in SPLITS)


def _unpack(code: int) -> tuple[int, int, int]:
    """(split index wanted, split index given, 1 if real) of a `DatasetWriter.videos` value."""
    return code // 6, code // 2 % 3, code % 2


def _remove_file(path: Path) -> None:
    """Remove `path` if it is a regular file (a link or a folder a user put there stays)."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def format_counts(stats: dict) -> str:
    parts = []
    for s in SPLITS:
        c = stats["splits"][s]
        parts.append(f"{s} {c['samples']} ({c['fake_samples']} fake traces on {c['fake_videos']} videos, "
                     f"{c['real_samples']} real)")
    return "; ".join(parts)


def summary(out: Path, stats: dict, invalid_keys: Sequence[str] = ()) -> str:
    """The line a converter prints at the end: the counts, videos sharing a file, traces per category and unmapped
    tags, traces left out as invalid."""
    line = f"wrote {out}: {format_counts(stats)}"
    media = stats.get("media_files", {})
    if media.get("videos_sharing_a_file"):
        line += (f"; {media['videos_sharing_a_file']} video(s) share a file with an earlier one, in its split "
                 f"({media['videos_moved_to_the_split_of_their_file']} moved there)")
    cats = stats.get("categories", {})
    if cats.get("total"):
        line += "; traces per category: " + ", ".join(f"{k} {v}" for k, v in cats["total"].items())
    if cats.get("unmapped_tags"):
        line += "; tags no category covers (kept as they are): " + ", ".join(
            f"{k} {v}" for k, v in cats["unmapped_tags"].items())
    left = {k: stats["skipped"][k] for k in invalid_keys if stats.get("skipped", {}).get(k)}
    if left:
        line += "; left out as invalid (--skip-invalid): " + ", ".join(f"{k} {v}" for k, v in left.items())
    return line


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
                        "one such directory per variant, DIR/<variant>/) and a manifest; a re-run replaces the "
                        "files of the previous run and keeps any others")
    g.add_argument("--variant", default="full", choices=(*VARIANTS, "all"),
                   help="supervision ablation of the paper (default: full); 'all' writes every variant")
    g.add_argument("--bbox-format", default="pixels", choices=prompts.BOX_FORMAT_NAMES,
                   help="coordinates in the answer (the question names the unit unless pixels): "
                        + prompts.box_formats_help() + " (default: pixels). meta.bbox is always source pixels")
    g.add_argument("--split", default=split_default, metavar="TRAIN:VAL:TEST",
                   help=f"split ratios by unique video (default: {split_default}); a video's split depends only on "
                        "its id and --seed, and videos sharing a media file share a split")
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
    g.add_argument("--skip-invalid", action="store_true",
                   help="leave out traces that start or end after their clip (one frame of tolerance) or have "
                        "fractional frame numbers, counted per reason in stats.json and the summary, instead of "
                        "failing on the first")
    g.add_argument("--category-map", type=Path, default=None, metavar="FILE",
                   help="YAML mapping of raw category tags onto categories (meta.categories; meta.tags keeps the raw "
                        "tags); default: the paper's nine, prompts/deeptrace/categories.yaml")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def output_variants(variant: str) -> tuple[list[str], bool]:
    return (list(VARIANTS), True) if variant == "all" else ([variant], False)
