"""Reading LabelBox video exports (Export v2 NDJSON / JSON list, Export v1 JSON array) into `LabelData`.

converters/README.md describes the formats read. Export v2 is streamed row by row; an Export v1 file is one JSON
array (one item per label), so it is loaded whole and grouped by data row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from common.errors import UserError, where
from common.jsonl import iter_jsonl, open_text, read_json
from converters.boxes import ltwh_box
from converters.labelbox_traces import LabelData, ObjectTrack, classification_facts, frame_number, parse_segments

LABEL_MODES = ("first", "all", "benchmark")


# --------------------------------------------------------------------------------------------------------------------
# Format detection


def detect_format(path: Path) -> str:
    """'v2-ndjson', 'v2-json' (a JSON list of v2 rows) or 'v1' (JSON array of label items, or one item)."""
    with open_text(path) as fh:
        head = fh.read(1 << 16)
        first_line = head.split("\n", 1)[0] if "\n" in head else head + fh.readline()
    stripped = head.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise UserError(f"{path}: the export is empty")
    if stripped[0] == "{":
        try:
            record = json.loads(first_line)
        except json.JSONDecodeError:
            record = None  # a pretty-printed object: decide from the whole file below
        if isinstance(record, dict):
            return _kind_of(record, path, where(path, 1))
        kind = _kind_of(_load_json(path), path, str(path))  # one pretty-printed object
        return "v2-json" if kind == "v2-ndjson" else kind
    if stripped[0] == "[":
        data = _load_json(path)
        if not data:
            raise UserError(f"{path}: the export is an empty JSON array")
        kind = _kind_of(data[0], path, f"{path}: item 1")
        return "v2-json" if kind == "v2-ndjson" else kind
    raise UserError(f"{path}: not a LabelBox export (expected NDJSON rows or a JSON array)")


def _kind_of(record: Any, path: Path, ctx: str) -> str:
    if isinstance(record, dict):
        if "data_row" in record and "experiments" in record and "projects" not in record:
            raise UserError(f"{ctx}: this is a model-run export (experiments/…); export the labels from the project")
        if "data_row" in record:
            return "v2-ndjson"
        if "DataRow ID" in record:
            return "v1"
    keys = ", ".join(list(record)[:6]) if isinstance(record, dict) else type(record).__name__
    raise UserError(f"{ctx}: not a LabelBox video export row (no data_row or 'DataRow ID'; found {keys})")


def _load_json(path: Path) -> Any:
    return read_json(path)


# --------------------------------------------------------------------------------------------------------------------
# A data row (a video) with its chosen labels, format-independent


@dataclass
class Row:
    ctx: str  # "file:line" (v2) or "file: item N" (v1), for messages
    data_row_id: str
    global_key: str | None
    external_id: str | None
    row_data: str | None
    project_id: str | None
    media_attributes: dict
    metadata: list
    labels: list[Any]  # raw labels (v2 dicts / v1 items)
    fmt: str


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def is_skipped(label: Any) -> bool:
    if not isinstance(label, dict):
        return False
    perf = label.get("performance_details") or {}
    return bool(label.get("Skipped") or label.get("skipped") or (isinstance(perf, dict) and perf.get("skipped")))


def select_labels(labels: list[Any], mode: str, stats: Counter) -> list[Any]:
    """first: the first non-skipped label; all: every non-skipped label; benchmark: the benchmark label."""
    if len(labels) == 1 and mode != "benchmark" and not is_skipped(labels[0]):
        return labels[:]  # the usual row: what follows would count nothing
    ok = [lb for lb in labels if not is_skipped(lb)]
    stats["skipped_labels"] += len(labels) - len(ok)
    if not ok:
        return []
    if mode == "all":
        return ok
    if mode == "benchmark":
        bench = _benchmark(ok)
        if bench is not None:
            stats["labels_not_benchmark"] += len(ok) - 1
            return [bench]
        stats["rows_without_benchmark_label_used_first"] += 1
    stats["labels_not_first"] += len(ok) - 1
    return ok[:1]


def _benchmark(labels: list[Any]) -> Any | None:
    def perf(lb: dict) -> dict:
        p = lb.get("performance_details")
        return p if isinstance(p, dict) else {}

    def lid(lb: dict) -> Any:
        return lb.get("id", lb.get("ID"))

    refs = {perf(lb).get("benchmark_reference_label") for lb in labels} | {lb.get("Benchmark ID") for lb in labels}
    refs.discard(None)
    for lb in labels:  # explicitly flagged, or referenced by the other labels
        if lb.get("is_benchmark_reference") or perf(lb).get("is_benchmark_reference") or lid(lb) in refs:
            return lb
    if any("benchmark_reference_label" in perf(lb) for lb in labels):  # the one label that references nothing
        plain = [lb for lb in labels if "benchmark_reference_label" not in perf(lb)]
        if len(plain) == 1:
            return plain[0]
    return None


class ProjectChooser:
    """Picks the project of each v2 row: `--project-id`, or the only project in the export."""

    class Several(Exception):
        pass

    def __init__(self, wanted: str | None):
        self.wanted = wanted
        self.seen: Counter = Counter()

    def pick(self, projects: dict) -> tuple[str | None, dict | None]:
        seen = self.seen
        for pid in projects:
            seen[pid] += 1
        if self.wanted is not None:
            return self.wanted, projects.get(self.wanted)
        if len(self.seen) > 1:
            raise ProjectChooser.Several()
        if not projects:
            return None, None
        pid = next(iter(projects))
        return pid, projects[pid]

    def listing(self) -> str:
        return ", ".join(f"{pid} ({n} rows)" for pid, n in self.seen.most_common())


def iter_rows(path: Path, fmt: str, project_id: str | None, stats: Counter) -> Iterator[Row]:
    if fmt == "v1":
        yield from _iter_v1(path, project_id, stats)
    else:
        yield from _iter_v2(path, fmt, project_id, stats)


def _v2_records(path: Path, fmt: str) -> Iterator[tuple[str, Any]]:
    if fmt == "v2-ndjson":
        prefix = where(path) + ":"  # where(path, lineno), spelled out: this runs for every row
        for lineno, record in iter_jsonl(path):
            yield prefix + str(lineno), record
    else:
        data = _load_json(path)
        for i, record in enumerate([data] if isinstance(data, dict) else data, 1):
            yield f"{path}: item {i}", record


def _iter_v2(path: Path, fmt: str, project_id: str | None, stats: Counter) -> Iterator[Row]:
    """The rows of the chosen project, one record at a time; what has nothing for the project is counted."""
    chooser = ProjectChooser(project_id)
    records = _v2_records(path, fmt)
    n = 0
    for ctx, rec in records:
        n += 1
        if not isinstance(rec, dict) or not isinstance(rec.get("data_row"), dict):
            raise UserError(f"{ctx}: not a LabelBox Export v2 row (expected an object with 'data_row')")
        dr = rec["data_row"]
        drid = dr.get("id")
        if not (isinstance(drid, str) and drid):
            raise UserError(f"{ctx}: data_row has no id")
        projects = rec.get("projects")
        if projects is None and "experiments" in rec:
            raise UserError(f"{ctx}: this is a model-run export (experiments/…); export the labels from the project")
        if projects is not None and not isinstance(projects, dict):
            raise UserError(f"{ctx}: 'projects' must be an object keyed by project id")
        try:
            pid, project = chooser.pick(projects or {})
        except ProjectChooser.Several:  # list every project of the export in the error
            for _, more in records:
                if isinstance(more, dict) and isinstance(more.get("projects"), dict):
                    chooser.seen.update(more["projects"].keys())
            raise UserError(f"{path}: the export holds several projects; choose one with --project-id: "
                            f"{chooser.listing()}") from None
        if project is None:
            stats["rows_not_in_project" if project_id and projects else "rows_without_labels"] += 1
            continue
        labels = project.get("labels") if isinstance(project, dict) else None
        if labels is not None and not isinstance(labels, list):
            raise UserError(f"{ctx}: projects.{pid}.labels must be a list")
        media = rec.get("media_attributes") or {}
        yield Row(ctx=ctx, data_row_id=drid, global_key=_str(dr.get("global_key")),
                  external_id=_str(dr.get("external_id")), row_data=_str(dr.get("row_data")), project_id=pid,
                  media_attributes=media if isinstance(media, dict) else {},
                  metadata=rec.get("metadata_fields") or [], labels=labels or [], fmt="v2")
    if n == 0:
        raise UserError(f"{path}: the export has no data rows")
    if project_id is not None and project_id not in chooser.seen:
        found = chooser.listing() or "none"
        raise UserError(f"{path}: project id {project_id} is not in this export; projects found: {found}")
    stats["rows_read"] = n


def first_place(path: Path, fmt: str, data_row_id: str) -> str:
    """Where a data row first appears in a v2 export (for the duplicate-row error; rescans the file)."""
    return next((ctx for ctx, r in _v2_records(path, fmt) if isinstance(r, dict) and isinstance(r.get("data_row"), dict)
                 and r["data_row"].get("id") == data_row_id), "?")


def _v1_project(item: dict) -> str | None:
    url = item.get("View Label")
    if isinstance(url, str):
        ids = parse_qs(urlparse(url).query).get("project")
        if ids:
            return ids[0]
    return None


def _iter_v1(path: Path, project_id: str | None, stats: Counter) -> Iterator[Row]:
    data = _load_json(path)
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise UserError(f"{path}: the export has no label items")
    groups: dict[str, list[tuple[int, dict]]] = {}
    projects: Counter = Counter()
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not _str(item.get("DataRow ID")):
            raise UserError(f"{path}: item {i}: not a LabelBox Export v1 label item (no 'DataRow ID')")
        pid = _v1_project(item)
        projects[pid] += 1
        if project_id is not None and pid is not None and pid != project_id:
            stats["labels_not_in_project"] += 1
            continue
        groups.setdefault(item["DataRow ID"], []).append((i, item))
    named = [p for p in projects if p is not None]
    if project_id is None and len(named) > 1:
        listing = ", ".join(f"{p} ({n} labels)" for p, n in projects.most_common() if p is not None)
        raise UserError(f"{path}: the export holds several projects; choose one with --project-id: {listing}")
    if project_id is not None and named and project_id not in named:
        raise UserError(f"{path}: project id {project_id} is not in this export; projects found: {', '.join(named)}")
    stats["rows_read"] = len(groups)
    for drid, members in groups.items():
        i, first = members[0]
        media = first.get("Media Attributes") or {}
        labels = []
        for j, item in members:
            labels.append({**item, "_item": j})
        yield Row(ctx=f"{path}: item {i}", data_row_id=drid, global_key=_str(first.get("Global Key")),
                  external_id=_str(first.get("External ID")), row_data=_str(first.get("Labeled Data")),
                  project_id=_v1_project(first), media_attributes=media if isinstance(media, dict) else {},
                  metadata=first.get("DataRow Metadata") or [], labels=labels, fmt="v1")


# --------------------------------------------------------------------------------------------------------------------
# Labels → LabelData


def _frame_number(key: Any, ctx: str) -> int:
    n = int(key) if type(key) is str and key.isdecimal() and key.isascii() else frame_number(key, ctx)  # "12": fast
    if n < 1:
        raise UserError(f"{ctx}: frame number {n} is below 1 (LabelBox frames are 1-based)")
    return n


def _segments_for(cls: dict, segments: dict) -> list | None:
    for fid in _cls_ids(cls):
        if fid in segments:
            return segments[fid]
    return None


def _cls_ids(cls: Any) -> list[str]:
    out = []
    if isinstance(cls, dict):
        for key in ("feature_id", "featureId"):
            if isinstance(cls.get(key), str):
                out.append(cls[key])
        for key in ("radio_answer", "answer"):
            if isinstance(cls.get(key), dict):
                out += _cls_ids(cls[key])
        for key in ("checklist_answers", "answers", "answer"):
            if isinstance(cls.get(key), list):
                for a in cls[key]:
                    out += _cls_ids(a)
    return out


def parse_v2_label(label: Any, ctx: str) -> LabelData:
    if not isinstance(label, dict):
        raise UserError(f"{ctx}: a label must be an object, got {type(label).__name__}")
    lid = _str(label.get("id"))
    ctx = f"{ctx}: label {lid}" if lid else ctx
    ann = label.get("annotations") or {}
    if not isinstance(ann, dict):
        raise UserError(f"{ctx}: annotations must be an object")
    frames = ann.get("frames") or {}
    segments = ann.get("segments") or {}
    if not isinstance(frames, dict) or not isinstance(segments, dict):
        raise UserError(f"{ctx}: annotations.frames and annotations.segments must be objects keyed by frame / id")
    data = LabelData(label_id=lid)
    tracks = data.objects
    numbered = {_frame_number(k, ctx): v for k, v in frames.items()}
    if len(numbered) < len(frames):  # "1" and "01", say
        counts = Counter(_frame_number(k, ctx) for k in frames)
        twice = min(n for n, c in counts.items() if c > 1)
        raise UserError(f"{ctx}: frame {twice} appears twice in annotations.frames "
                        f"({', '.join(repr(k) for k in frames if _frame_number(k, ctx) == twice)})")
    for n, frame in sorted(numbered.items()):
        if not isinstance(frame, dict):
            raise UserError(f"{ctx}: frame {n} must be an object")
        objects = frame.get("objects") or {}
        if isinstance(objects, list):  # tolerate a list of objects
            objects = {o.get("feature_id", str(i)): o for i, o in enumerate(objects) if isinstance(o, dict)}
        for key, obj in objects.items():
            if not isinstance(obj, dict) or "bounding_box" not in obj:
                continue  # masks, points, lines: not traces
            fid = obj.get("feature_id")
            if not (isinstance(fid, str) and fid):
                fid = str(key)
            track = tracks.get(fid)
            if track is None:
                track = tracks[fid] = ObjectTrack(fid, _str(obj.get("name")) or _str(obj.get("value")))
            track.boxes[n] = ltwh_box(obj["bounding_box"], lambda: f"{ctx}: frame {n} object {fid}")  # noqa: B023
            classifications = obj.get("classifications")
            if classifications:
                facts = classification_facts(classifications)
                if facts:
                    track.facts[n] = facts
        for cls in frame.get("classifications") or []:
            raw = _segments_for(cls, segments)
            ranges = parse_segments(raw, f"{ctx}: segments") if raw is not None else [(n, n)]
            data.ranged.append((ranges, classification_facts([cls])))
    for cls in ann.get("classifications") or []:
        raw = _segments_for(cls, segments)
        if raw is not None:
            data.ranged.append((parse_segments(raw, f"{ctx}: segments"), classification_facts([cls])))
        else:
            data.global_facts.extend(classification_facts([cls]))
    for fid, track in data.objects.items():
        if fid in segments:
            track.segments = parse_segments(segments[fid], f"{ctx}: segments of object {fid}")
    return data


def parse_v1_label(item: dict, ctx: str, frames_dir: Path) -> LabelData:
    lid = _str(item.get("ID"))
    ctx = f"{ctx}: label {lid}" if lid else ctx
    label = item.get("Label")
    global_cls: list = []
    if isinstance(label, list):  # frames inlined (the SDK's LBV1VideoIterator form)
        frame_lines = [(f"{ctx}: frame entry {i}", fr) for i, fr in enumerate(label, 1)]
    elif isinstance(label, dict):
        global_cls = label.get("classifications") or []
        frames = label.get("frames")
        if isinstance(frames, list):
            frame_lines = [(f"{ctx}: frame entry {i}", fr) for i, fr in enumerate(frames, 1)]
        elif isinstance(frames, str):
            frame_lines = list(_read_frames_file(frames, lid, frames_dir, ctx))
        else:
            frame_lines = []
    elif label in (None, "", "Skip"):
        frame_lines = []
    else:
        raise UserError(f"{ctx}: 'Label' must be an object or a list of frames, got {type(label).__name__}")
    data = LabelData(label_id=lid, contiguous_frames=True)
    for fctx, fr in frame_lines:
        if not isinstance(fr, dict) or "frameNumber" not in fr:
            raise UserError(f"{fctx}: not a v1 frame line (no frameNumber)")
        n = _frame_number(fr["frameNumber"], fctx)
        for obj in fr.get("objects") or []:
            if not isinstance(obj, dict) or "bbox" not in obj:
                continue
            fid = _str(obj.get("featureId")) or _str(obj.get("feature_id"))
            if fid is None:
                raise UserError(f"{fctx}: frame {n}: an object has no featureId")
            track = data.objects.setdefault(fid, ObjectTrack(fid, _str(obj.get("title")) or _str(obj.get("value"))))
            track.boxes[n] = ltwh_box(obj["bbox"], lambda: f"{fctx}: frame {n} object {fid}")  # noqa: B023
            facts = classification_facts(obj.get("classifications") or [])
            if facts:
                track.facts[n] = facts
        for cls in fr.get("classifications") or []:
            data.ranged.append(([(n, n)], classification_facts([cls])))
    data.global_facts = classification_facts(global_cls)
    return data


def _read_frames_file(ref: str, label_id: str | None, frames_dir: Path, ctx: str) -> Iterator[tuple[str, Any]]:
    """Frames of a v1 label from a file downloaded beside the export: `<label id>.ndjson` (or .json / no suffix)."""
    parsed = urlparse(ref)
    candidates: list[Path] = []
    if not parsed.scheme or len(parsed.scheme) == 1 or parsed.scheme == "file":
        p = Path(parsed.path if parsed.scheme == "file" else ref)
        candidates.append(p if p.is_absolute() else frames_dir / p)
    names = [n for n in (label_id, parsed.path.rstrip("/").rsplit("/", 1)[-1]) if n]
    for name in dict.fromkeys(names):
        candidates += [frames_dir / f"{name}{ext}" for ext in (".ndjson", ".json", "", ".ndjson.gz", ".json.gz")]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise UserError(f"{ctx}: frames are at {ref} but no downloaded copy was found; save it as "
                        f"{frames_dir / ((label_id or 'LABEL_ID') + '.ndjson')} (or pass --frames-dir)")
    with open_text(path) as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        for i, fr in enumerate(_load_json(path), 1):
            yield f"{path}: item {i}", fr
    else:
        for lineno, fr in iter_jsonl(path):
            yield where(path, lineno), fr


def parse_label(row: Row, label: Any, frames_dir: Path) -> LabelData:
    if row.fmt == "v1":
        return parse_v1_label(label, f"{row.ctx.rsplit(': item', 1)[0]}: item {label.get('_item')}", frames_dir)
    return parse_v2_label(label, row.ctx)


def metadata_value(metadata: Any, names: set[str]) -> str | None:
    """Value of the first data-row metadata field whose name is in `names` (case-insensitive)."""
    if not isinstance(metadata, list):
        return None
    for m in metadata:
        if isinstance(m, dict):
            name = m.get("schema_name") or m.get("name") or m.get("schemaName")
            if isinstance(name, str) and name.strip().lower() in names and m.get("value") not in (None, ""):
                value = m["value"]
                return value if isinstance(value, str) else json.dumps(value)
    return None
