#!/usr/bin/env python
"""LabelBox video export (DeeptraceReward-style fake-trace annotations) → ms-swift JSONL for SFT and evaluation.

Reads Export v2 (NDJSON, one data row per line) or Export v1 (JSON array, one item per label; frames inlined or
downloaded beside it), detected automatically. One FAKE sample per trace (one contiguous segment of one boxed object),
one REAL sample per clip in --real-videos; the paper's question and answer (prompts/deeptrace).
See converters/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from common.cli import Parser  # noqa: E402
from common.errors import UserError, run_cli  # noqa: E402
from converters.dataset_writer import (  # noqa: E402
    DatasetWriter,
    SplitRule,
    Video,
    add_output_args,
    format_counts,
    output_variants,
    report,
)
from converters.labelbox_export import (  # noqa: E402
    LABEL_MODES,
    Row,
    detect_format,
    first_place,
    iter_rows,
    metadata_value,
    parse_label,
    select_labels,
)
from converters.labelbox_traces import TraceOptions, build_traces  # noqa: E402
from converters.media_files import MediaResolver, media_geometry, missing_media_error, scan_real_videos  # noqa: E402

SKIP_KEYS = ("rows_without_labels", "rows_not_in_project", "labels_not_in_project", "skipped_labels",
             "rows_with_only_skipped_labels", "labels_not_first", "labels_not_benchmark", "labels_without_traces",
             "fake_videos_without_traces", "segments_without_box", "missing_media")

EXAMPLES = """\
examples:
  python converters/labelbox_to_swift.py samples/deeptrace/export_v2.ndjson \\
      --media-root samples/deeptrace/videos --real-videos samples/deeptrace/real --out data/deeptrace
  python converters/labelbox_to_swift.py export.ndjson --project-id clxyz... --labels all \\
      --bbox-mode union --bbox-format norm1000 --variant all --media-root /data/fake --real-videos /data/real \\
      --out data/deeptrace_all      # → data/deeptrace_all/<variant>/{train,val,test}.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="labelbox_to_swift.py", description=__doc__, epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export", type=Path,
                   help="LabelBox export: Export v2 NDJSON (or a JSON list of v2 rows), or Export v1 JSON array")
    g = p.add_argument_group("LabelBox export")
    g.add_argument("--project-id", default=None, metavar="ID",
                   help="project whose labels to use (required when the export holds several; the error lists them)")
    g.add_argument("--labels", default="first", choices=LABEL_MODES,
                   help="several labels on one data row (consensus, benchmark, relabels): first = the first "
                        "non-skipped label (default); all = every non-skipped label as separate traces; benchmark = "
                        "the benchmark label (the first label where a row has none)")
    g.add_argument("--media-root", type=Path, action="append", default=[], metavar="DIR",
                   help="where the fake videos are: a data row maps to DIR/<global_key>, DIR/<external_id>, "
                        "DIR/<data row id> or DIR/<file name in row_data> (a missing extension is tried as .mp4 "
                        "etc.). Repeatable; default: the export's directory")
    g.add_argument("--frames-dir", type=Path, default=None, metavar="DIR",
                   help="Export v1 only: where the downloaded frame files (<label id>.ndjson) are; "
                        "default: the export's directory")
    g.add_argument("--bbox-mode", default="first", choices=("first", "union"),
                   help="first = the box at the segment's first frame (default); union = the union of the "
                        "(interpolated) boxes over the whole segment")
    g.add_argument("--explanation-feature", action="append", default=[], metavar="NAME",
                   help="ontology name (or value / schema id) of the free-text explanation question; repeatable; "
                        "default: any text answer")
    g.add_argument("--category-feature", action="append", default=[], metavar="NAME",
                   help="ontology name (or value / schema id) of the category checklist/radio question; "
                        "repeatable; default: any checklist or radio answer on the object or in a frame range "
                        "(a named feature also counts when it is a global classification)")
    g.add_argument("--source-field", action="append", default=[], metavar="NAME",
                   help="data-row metadata field giving meta.source, e.g. the generator; repeatable; "
                        "default: source, generator")
    add_output_args(p)
    return p


def _names(values: list[str]) -> frozenset[str] | None:
    names = frozenset(v.strip().lower() for item in values for v in item.split(",") if v.strip())
    return names or None


@dataclass
class Settings:
    """What converting a data row needs."""

    export: Path
    fmt: str
    project_id: str | None
    labels: str
    resolver: MediaResolver
    frames_dir: Path
    opts: TraceOptions
    source_names: set[str]


class SharedFiles:
    """Counts labelled videos whose file an earlier one already uses (two rows, two ids, one file)."""

    def __init__(self, counter: Counter):
        self.keys: set[int] = set()  # hash(path): ~100 bytes a video, whatever the rows hold
        self.counter = counter

    def append(self, key: int) -> None:
        if key in self.keys:
            self.counter["videos_sharing_a_file"] += 1
        self.keys.add(key)


def convert_rows(rows: Iterable[Row], s: Settings, writer: DatasetWriter, counter: Counter, missing: list[dict],
                 files: SharedFiles, projects: Counter) -> None:
    """Write the samples of each row's traces; what is left out is counted in `counter` (missing media listed in
    `missing`), the files of the videos written go to `files` (hash of the path) and their projects to `projects`."""
    for row in rows:
        if not row.labels:
            counter["rows_without_labels"] += 1
            continue
        chosen = select_labels(row.labels, s.labels, counter)
        if not chosen:
            counter["rows_with_only_skipped_labels"] += 1
            continue
        video_id = row.global_key or row.data_row_id
        path, looked = s.resolver.find([row.global_key, row.external_id, row.data_row_id], row.row_data)
        if path is None:
            counter["missing_media"] += 1
            missing.append({"video_id": video_id, "where": row.ctx, "looked_for": looked})
            continue
        row_ctx = f"{row.ctx}: data row {row.data_row_id}"
        width, height, fps, duration, probed = media_geometry(row.media_attributes, path, row_ctx)
        if probed:
            counter["videos_probed_for_media_attributes"] += 1
        traces = []
        for label in chosen:
            data = parse_label(row, label, s.frames_dir)
            found = build_traces(data, width=width, height=height, fps=fps, opts=s.opts, stats=counter,
                                 ctx=row_ctx + (f" label {data.label_id}" if data.label_id else ""))
            if not found:
                counter["labels_without_traces"] += 1
            for t in found:
                t.extra["label_id"] = data.label_id
            traces += found
        if not traces:
            counter["fake_videos_without_traces"] += 1
            continue
        if writer.has(video_id):  # one data row per video: a second one means concatenated exports
            raise UserError(f"{row.ctx}: data row {row.data_row_id} (video {video_id}) already appeared at "
                            f"{first_place(s.export, s.fmt, row.data_row_id)} (concatenated exports?)")
        files.append(hash(path))
        projects[row.project_id] += 1
        writer.add(Video(video_id=video_id, label="fake", path=path, width=width, height=height, fps=fps,
                         duration=duration, source=metadata_value(row.metadata, s.source_names), traces=traces,
                         extra={"data_row_id": row.data_row_id, "project_id": row.project_id}), row.ctx)


def convert_export(s: Settings, writer: DatasetWriter, progress: bool) -> tuple[Counter, list[dict], SharedFiles,
                                                                          Counter]:
    """The whole export in one streaming pass: what was left out (counted), missing media, files, projects."""
    counter: Counter = Counter()
    missing: list[dict] = []
    files = SharedFiles(counter)
    projects: Counter = Counter()
    rows = iter_rows(s.export, s.fmt, s.project_id, counter)
    convert_rows(tqdm(rows, desc="data rows", unit="row", disable=None if progress else True), s, writer, counter,
                 missing, files, projects)
    return counter, missing, files, projects


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    export: Path = args.export
    if not export.is_file():
        raise UserError(f"{export}: export file not found")
    split_rule = SplitRule.parse(args.split, args.seed)
    fmt = detect_format(export)
    variants, subdirs = output_variants(args.variant)
    roots = args.media_root or [export.parent]
    s = Settings(export=export, fmt=fmt, project_id=args.project_id, labels=args.labels,
                 resolver=MediaResolver(roots), frames_dir=args.frames_dir or export.parent,
                 opts=TraceOptions(bbox_mode=args.bbox_mode, explanation_names=_names(args.explanation_feature),
                                   category_names=_names(args.category_feature), strict=args.strict),
                 source_names=set(_names(args.source_field) or {"source", "generator"}))
    progress = not args.quiet
    writer = DatasetWriter(args.out, variants, args.bbox_format, split_rule, subdirs=subdirs)
    try:
        counter, missing, files, projects = convert_export(s, writer, progress)
        if missing and not args.skip_missing:
            raise missing_media_error(missing, roots)
        if args.real_videos:
            for video in scan_real_videos(args.real_videos, progress):
                if hash(str(video.path)) in files.keys:
                    raise UserError(f"{video.path}: this real clip is also the file of a labelled fake video "
                                    "(see --media-root)")
                video.source = args.real_source
                writer.add(video, str(video.path))
        counts = writer.stats()
        if counts["total"]["samples"] == 0:
            raise UserError(f"{export}: no samples: {counter.get('rows_read', 0)} data rows, none with a usable "
                            f"labelled trace ({_why(counter)}) and no --real-videos")
        stats = {
            "tool": "labelbox_to_swift", "input": str(export.resolve()), "input_format": f"labelbox-export-{fmt}",
            "project_id": args.project_id or (next(iter(projects)) if len(projects) == 1 else None),
            "labels": args.labels, "bbox_mode": args.bbox_mode, "bbox_format": args.bbox_format,
            "variants": variants, "split": split_rule.describe(), **counts,
            **report(counter, SKIP_KEYS), "missing_media": missing,
        }
        writer.commit(stats)
    except BaseException:
        writer.abort()
        raise
    if progress:
        print(f"wrote {args.out}: {format_counts(counts)}")
        if missing:
            print(f"skipped {len(missing)} data rows whose video is missing (listed in stats.json)")
    return 0


def _why(counter: Counter) -> str:
    keys = [k for k in SKIP_KEYS if counter.get(k)]
    return ", ".join(f"{k}={counter[k]}" for k in keys) or "no labels"


if __name__ == "__main__":
    run_cli(main)
