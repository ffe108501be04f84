#!/usr/bin/env python
"""LabelBox video export (DeeptraceReward-style fake-trace annotations) → ms-swift JSONL for SFT and evaluation.

Reads Export v2 (NDJSON, one data row per line) or Export v1 (JSON array, one item per label; frames inlined or
downloaded beside it), detected automatically. One FAKE sample per trace (one contiguous segment of one boxed object),
one REAL sample per clip in --real-videos; the paper's question and answer (prompts/deeptrace).
See converters/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from common.errors import UserError, run_cli  # noqa: E402
from common.jsonl import LineChunk, iter_jsonl_chunk, line_chunks  # noqa: E402
from common.parallel import BrokenProcessPool, can_fork, forked_pool, ordered_map, usable_cpus  # noqa: E402
from converters.deeptrace_core import (  # noqa: E402
    DatasetWriter,
    MediaResolver,
    Parser,
    SplitRule,
    TraceOptions,
    Video,
    WriterPart,
    add_output_args,
    build_traces,
    format_counts,
    media_geometry,
    missing_media_error,
    output_variants,
    report,
    scan_real_videos,
)
from converters.labelbox_export import (  # noqa: E402
    LABEL_MODES,
    Row,
    V2Rows,
    detect_format,
    first_place,
    iter_rows,
    metadata_value,
    parse_label,
    select_labels,
)

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
    g.add_argument("--workers", default="auto", type=_workers_arg, metavar="N",
                   help="processes converting an Export v2 NDJSON file in chunks, merged in file order (the output "
                        "is the same as with 1); default auto: the usable CPUs, at most 8, for a file of 8 MiB or "
                        "more, else 1")
    add_output_args(p)
    return p


def _workers_arg(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes (1 or more) or auto, got {text!r}")
    return n


def _names(values: list[str]) -> frozenset[str] | None:
    names = frozenset(v.strip().lower() for item in values for v in item.split(",") if v.strip())
    return names or None


@dataclass
class Settings:
    """What converting a data row needs; module state in worker processes (they are forked, see `_convert_chunk`)."""

    export: Path
    fmt: str
    project_id: str | None
    labels: str
    resolver: MediaResolver
    frames_dir: Path
    opts: TraceOptions
    source_names: set[str]
    variants: list[str]
    bbox_format: str
    split_rule: SplitRule


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
                 files: SharedFiles | list[int], projects: Counter) -> None:
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


class Tally(NamedTuple):
    """What a conversion counted besides the samples: skips and fix-ups, missing media, files, projects."""

    counter: Counter
    missing: list[dict]
    files: SharedFiles
    projects: Counter

    @classmethod
    def new(cls) -> Tally:
        counter: Counter = Counter()
        return cls(counter, [], SharedFiles(counter), Counter())


def convert_export(s: Settings, writer: DatasetWriter, progress: bool) -> Tally:
    """The whole export in one pass: the reference for every result and every error."""
    tally = Tally.new()
    rows = iter_rows(s.export, s.fmt, s.project_id, tally.counter)
    convert_rows(tqdm(rows, desc="data rows", unit="row", disable=None if progress else True), s, writer,
                 *tally)
    return tally


# An Export v2 NDJSON file at least this large is converted in chunks on worker processes (`--workers auto`): below,
# starting them costs about what they save. Chunks: about four per worker, of 1 to 4 MiB (a worker holds one chunk,
# its records and its samples at a time; the parent a few chunks' samples).
PARALLEL_MIN_BYTES = 8 << 20
MIN_CHUNK_BYTES, MAX_CHUNK_BYTES = 1 << 20, 4 << 20


def chunk_bytes(size: int, workers: int) -> int:
    return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, size // (workers * 4)))


_settings: Settings | None = None  # set in the parent before the workers fork


class ChunkResult(NamedTuple):
    part: WriterPart
    counter: Counter
    missing: list[dict]
    files: list[int]
    projects: Counter
    seen_projects: Counter
    records: int


def _convert_chunk(chunk: LineChunk) -> ChunkResult | None:
    """A worker's share: the rows of one chunk into an in-memory writer; None on any error (the parent then
    converts the export in one pass, which reports the error at its row, as it would have without workers)."""
    s = _settings
    assert s is not None
    counter: Counter = Counter()
    missing: list[dict] = []
    files: list[int] = []
    projects: Counter = Counter()
    try:
        writer = DatasetWriter(None, s.variants, s.bbox_format, s.split_rule, subdirs=False)
        reader = V2Rows(s.export, s.project_id, counter)
        prefix = f"{s.export}:"
        rows = (row for lineno, rec in iter_jsonl_chunk(s.export, chunk)
                if (row := reader.row(prefix + str(lineno), rec)) is not None)
        convert_rows(rows, s, writer, counter, missing, files, projects)
    except Exception:  # noqa: BLE001 - any failure is redone, and reported, by the one-pass conversion
        return None
    return ChunkResult(writer.part(), counter, missing, files, projects, reader.chooser.seen, reader.records)


def convert_in_chunks(s: Settings, writer: DatasetWriter, chunks: list[LineChunk], workers: int,
                      progress: bool) -> Tally | None:
    """`convert_export` with the rows parsed and converted on `workers` processes, merged in file order.

    The output is the same, byte for byte. None, with `writer` to be discarded, where a chunk failed or the chunks
    only fail together (a video in two chunks, several projects, no rows, the --project-id nowhere) or a worker
    died: the one-pass conversion then reports the problem (or does the work).
    """
    global _settings
    tally = Tally.new()
    counter = tally.counter
    seen: Counter = Counter()
    records = 0
    _settings = s
    try:
        with forked_pool(workers) as pool:
            results = ordered_map(pool, _convert_chunk, chunks, in_flight=2 * workers)
            with contextlib.closing(results), tqdm(total=sum(c.lines for c in chunks), desc="lines", unit="line",
                                                   disable=None if progress else True) as bar:
                for chunk, result in zip(chunks, results, strict=True):
                    if result is None or not writer.merge(result.part):
                        return None
                    counter.update(result.counter)
                    tally.missing.extend(result.missing)
                    for key in result.files:
                        tally.files.append(key)
                    tally.projects.update(result.projects)
                    seen.update(result.seen_projects)
                    records += result.records
                    bar.update(chunk.lines)
    except BrokenProcessPool:  # a worker died (killed for memory?): one pass may still do
        print("labelbox_to_swift.py: a worker process died; converting the export again in one process",
              file=sys.stderr)
        return None
    finally:
        _settings = None
    if records == 0 or (len(seen) > 1 if s.project_id is None else s.project_id not in seen):
        return None
    counter["rows_read"] = records
    return tally


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
                 source_names=set(_names(args.source_field) or {"source", "generator"}), variants=variants,
                 bbox_format=args.bbox_format, split_rule=split_rule)
    progress = not args.quiet
    workers = _workers(args.workers, export, fmt)
    chunks = line_chunks(export, chunk_bytes(export.stat().st_size, workers)) if workers > 1 else None

    def new_writer() -> DatasetWriter:
        return DatasetWriter(args.out, variants, args.bbox_format, split_rule, subdirs=subdirs)

    writer = new_writer()
    try:
        tally = None
        if chunks is not None and len(chunks) > 1:
            tally = convert_in_chunks(s, writer, chunks, min(workers, len(chunks)), progress)
            if tally is None:
                writer.abort()
                writer = new_writer()
        if tally is None:
            tally = convert_export(s, writer, progress)
        counter, missing, files, projects = tally
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


def _workers(value: str | int, export: Path, fmt: str) -> int:
    """Worker processes for `--workers`: auto = the usable CPUs (at most 8) for an Export v2 NDJSON file of
    PARALLEL_MIN_BYTES or more, else 1 (one pass). Other formats are one JSON document: always one pass."""
    if fmt != "v2-ndjson" or not can_fork():
        return 1
    if value == "auto":
        return min(usable_cpus(), 8) if export.stat().st_size >= PARALLEL_MIN_BYTES else 1
    return int(value)


def _why(counter: Counter) -> str:
    keys = [k for k in SKIP_KEYS if counter.get(k)]
    return ", ".join(f"{k}={counter[k]}" for k in keys) or "no labels"


if __name__ == "__main__":
    run_cli(main)
