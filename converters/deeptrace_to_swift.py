#!/usr/bin/env python
"""Released DeeptraceReward data (DeepTraceReward/RewardData `all_data.json`) → ms-swift JSONL.

`all_data.json` has one row per fake trace and one per real video (fields: video_id, video_path, video_type, split,
video_width/height/frame_rate/duration, faketrace_bbox {left, top, width, height} in pixels, faketrace_first_frame,
faketrace_duration, faketrace_explanations, faketrace_check_applies). Its field list is known from third-party code
only; anything this script cannot read is a clear error naming the record. By default the released `split` column
is kept. See converters/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from common.cli import Parser  # noqa: E402
from common.errors import UserError, run_cli, where  # noqa: E402
from common.jsonl import iter_jsonl  # noqa: E402
from converters.boxes import clip_box, ltwh_box, number  # noqa: E402
from converters.dataset_writer import (  # noqa: E402
    DatasetWriter,
    SplitRule,
    Trace,
    Video,
    add_output_args,
    clean_text,
    format_counts,
    output_variants,
    report,
)
from converters.media_files import MediaResolver, media_geometry, missing_media_error, scan_real_videos  # noqa: E402

SKIP_KEYS = ("fake_rows_without_bbox", "duplicate_real_rows", "missing_media")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "dev": "val", "test": "test", "testing": "test"}
FAKE_TYPES = {"fake_video", "fake"}
REAL_TYPES = {"real_video", "real"}

EXAMPLES = """\
examples:
  python converters/deeptrace_to_swift.py RewardData/all_data.json --out data/deeptrace_released
  python converters/deeptrace_to_swift.py RewardData/all_data.json --split 8:1:1 --seed 1 --variant all \\
      --bbox-format norm1000 --out data/deeptrace_resplit
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="deeptrace_to_swift.py", description=__doc__, epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="all_data.json (a JSON array; JSON Lines also accepted)")
    g = p.add_argument_group("released data")
    g.add_argument("--media-root", type=Path, action="append", default=[], metavar="DIR",
                   help="directory that video_path is relative to (videos/…, real_videos/…); repeatable; "
                        "default: the directory of the data file")
    g.add_argument("--first-frame-base", type=int, choices=(0, 1), default=0,
                   help="start = (faketrace_first_frame - BASE) / video_frame_rate. 0 (default) reproduces "
                        "third-party readers of the release (start = first_frame / fps); 1 treats it as a 1-based "
                        "LabelBox frame like labelbox_to_swift.py does")
    add_output_args(p, split_default="released")
    for action in p._actions:
        if action.dest == "split":
            action.help = ("'released' (default) keeps each row's split column; TRAIN:VAL:TEST (e.g. 8:1:1) "
                           "re-splits by unique video with --seed. Extra --real-videos clips are split 8:1:1 by "
                           "--seed under 'released'")
    return p


def read_records(path: Path) -> Iterator[tuple[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: data file not found")
    with path.open(encoding="utf-8-sig") as fh:
        head = fh.read(4096).lstrip()
    if not head:
        raise UserError(f"{path}: the data file is empty")
    if head[0] == "[":
        try:
            with path.open(encoding="utf-8-sig") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where(path, exc.lineno)}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not data:
            raise UserError(f"{path}: the data file is an empty JSON array")
        for i, rec in enumerate(data, 1):
            yield f"{path}: record {i}", rec
    elif head[0] == "{":
        for lineno, rec in iter_jsonl(path):
            yield where(path, lineno), rec
    else:
        raise UserError(f"{path}: expected a JSON array of records (all_data.json) or JSON Lines")


def _str(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def explanation_of(value: Any) -> str | None:
    if isinstance(value, list):
        return clean_text(" ".join(v for v in value if isinstance(v, str)))
    return clean_text(value) if isinstance(value, str) else None


def categories_of(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return list(dict.fromkeys(s.strip() for s in items if isinstance(s, str) and s.strip()))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data: Path = args.data
    released = args.split == "released"
    split_rule = SplitRule.parse("8:1:1" if released else args.split, args.seed)
    variants, subdirs = output_variants(args.variant)
    roots = args.media_root or [data.parent]
    resolver = MediaResolver(roots)
    progress = not args.quiet
    counter: Counter = Counter()
    missing: list[dict] = []
    real_seen: set[str] = set()
    files: dict[int, int] = {}  # hash(file) → hash(video id)

    with DatasetWriter(args.out, variants, args.bbox_format, split_rule, subdirs=subdirs) as writer:
        for ctx, rec in tqdm(read_records(data), desc="records", unit="row", disable=None if progress else True):
            counter["rows_read"] += 1
            if not isinstance(rec, dict):
                raise UserError(f"{ctx}: expected an object, got {type(rec).__name__}")
            vtype = _str(rec.get("video_type"))
            if vtype is None or vtype.lower() not in FAKE_TYPES | REAL_TYPES:
                raise UserError(f"{ctx}: video_type is {rec.get('video_type')!r}; expected fake_video or real_video")
            label = "fake" if vtype.lower() in FAKE_TYPES else "real"
            video_path = _str(rec.get("video_path"))
            video_id = _str(rec.get("video_id")) or video_path
            if video_id is None:
                raise UserError(f"{ctx}: no video_id or video_path")
            ctx = f"{ctx} (video {video_id})"
            split = None
            if released:
                raw = _str(rec.get("split"))
                split = SPLIT_NAMES.get(raw.lower()) if raw else None
                if split is None:
                    raise UserError(f"{ctx}: split is {rec.get('split')!r}; expected train, val or test "
                                    "(or pass --split 8:1:1 to re-split)")
            if label == "real" and video_id in real_seen:
                counter["duplicate_real_rows"] += 1
                continue
            names = [video_path, video_path.rsplit("/", 1)[-1] if video_path else None, video_id]
            path, looked = resolver.find(names)
            if path is None:
                counter["missing_media"] += 1
                missing.append({"video_id": video_id, "where": ctx, "looked_for": looked})
                continue
            attrs = {"width": rec.get("video_width"), "height": rec.get("video_height"),
                     "frame_rate": rec.get("video_frame_rate"), "frame_count": rec.get("video_frame_count"),
                     "duration": rec.get("video_duration")}
            width, height, fps, duration, probed = media_geometry(attrs, path, ctx)
            counter["videos_probed_for_media_attributes"] += probed
            video = Video(video_id=video_id, label=label, path=path, width=width, height=height, fps=fps,
                          duration=duration, source=_str(rec.get("video_source")), split=split)
            if label == "real":
                real_seen.add(video_id)
            else:
                trace = _trace(rec, ctx, video, args, counter)
                if trace is None:
                    continue
                video.traces = [trace]
            if files.setdefault(hash(str(path)), hash(video_id)) != hash(video_id):
                counter["videos_sharing_a_file"] += 1
            writer.add(video, ctx)
        if missing and not args.skip_missing:
            raise missing_media_error(missing, roots)
        for video in scan_real_videos(args.real_videos, progress) if args.real_videos else []:
            if hash(str(video.path)) in files:
                raise UserError(f"{video.path}: this --real-videos clip is also a video of {data.name}")
            video.source = args.real_source
            writer.add(video, str(video.path))
        counts = writer.stats()
        if counts["total"]["samples"] == 0:
            raise UserError(f"{data}: no samples ({counter['rows_read']} records)")
        stats = {
            "tool": "deeptrace_to_swift", "input": str(data.resolve()), "input_format": "deeptrace-all_data",
            "bbox_format": args.bbox_format, "variants": variants,
            "split": ({"rule": "released split column", "extra_real_videos": split_rule.describe()} if released
                      else split_rule.describe()),
            "first_frame_base": args.first_frame_base, **counts, **report(counter, SKIP_KEYS),
            "missing_media": missing,
        }
        writer.commit(stats)
    if progress:
        print(f"wrote {args.out}: {format_counts(counts)}")
        if missing:
            print(f"skipped {len(missing)} records whose video is missing (listed in stats.json)")
    return 0


def _trace(rec: dict, ctx: str, video: Video, args: argparse.Namespace, counter: Counter) -> Trace | None:
    raw = rec.get("faketrace_bbox")
    if not raw:
        if args.strict:
            raise UserError(f"{ctx}: fake row without faketrace_bbox (--strict)")
        counter["fake_rows_without_bbox"] += 1
        return None
    box, clipped = clip_box(ltwh_box(raw, f"{ctx}: faketrace_bbox"), video.width, video.height)
    if clipped:
        if args.strict:
            raise UserError(f"{ctx}: faketrace_bbox lies partly outside the {video.width}x{video.height} frame "
                            "(--strict)")
        counter["boxes_clipped"] += 1
    if box[2] <= box[0] or box[3] <= box[1]:
        raise UserError(f"{ctx}: faketrace_bbox lies outside the {video.width}x{video.height} frame")
    first = number(rec.get("faketrace_first_frame"), ctx, "faketrace_first_frame")
    if first - args.first_frame_base < 0:
        raise UserError(f"{ctx}: faketrace_first_frame {first:g} is below {args.first_frame_base} "
                        "(see --first-frame-base)")
    start = (first - args.first_frame_base) / video.fps
    length = number(rec.get("faketrace_duration"), ctx, "faketrace_duration", allow_none=True)
    end = start + length if length is not None and length >= 0 else None
    return Trace(bbox=box, start=start, end=end, explanation=explanation_of(rec.get("faketrace_explanations")),
                 categories=categories_of(rec.get("faketrace_check_applies")),
                 extra={"first_frame": first})


if __name__ == "__main__":
    run_cli(main)
