"""converters/labelbox_to_swift.py on a synthetic LabelBox Export v2 file against orjson parsing the same lines.

Scale 1.0 = ten times DeeptraceReward (66,000 data rows, 43,000 traces; half the rows queued without labels). Every
row declares media_attributes, so no video is probed. The candidate does the whole conversion (parse, traces, split,
three JSONL files and stats.json, staged and swapped in); the baseline only parses every line with orjson, which is
what the converter itself parses with: the fastest equivalent of its reading. Under the table: the same lines parsed
with `json.loads` (for comparison with older numbers), the conversion's rate in rows/s, and the peak RSS of a fresh
process converting the export. Target: at least 20,000 rows/s on one core, memory flat in the export's size. At
scale 1.0 a run takes about a minute on 2 cores; `--scale 0.1` takes seconds.
"""

from __future__ import annotations

import atexit
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.harness import Case
from converters.labelbox_to_swift import main

PROJECT = "clbenchproj00000000000001"
ROOT = Path(__file__).resolve().parents[1]


def _feature(fid: str, name: str, **answer) -> dict:
    return {"feature_id": fid, "feature_schema_id": f"schema_{name}", "name": name, "value": name.lower(), **answer}


def _row(i: int, traces: int) -> dict:
    key = f"bench_{i:06d}.mp4"
    frames: dict[str, dict] = {}
    segments = {}
    for t in range(traces):
        fid = f"clbenchobj{i:08d}{t:07d}"
        s, e = 1 + 5 * t, 12 + 5 * t
        for n, left in ((s, 10.0 + t), (e, 20.0 + t)):
            cls = [] if n == e else [
                _feature(f"{fid}c", "Category", checklist_answers=[_feature(f"{fid}a", "Object Distortion")]),
                _feature(f"{fid}t", "Explanation", text_answer={"content": f"The hand of person {i} melts."})]
            frames.setdefault(str(n), {"objects": {}, "classifications": []})["objects"][fid] = {
                **_feature(fid, "Unnatural part"), "annotation_kind": "VideoBoundingBox", "classifications": cls,
                "bounding_box": {"top": 12.0, "left": left, "height": 20.0, "width": 24.0}}
        segments[fid] = [[s, e]]
    labels = [] if traces == 0 else [{
        "id": f"clbenchlabel{i:013d}", "label_kind": "Video", "version": "1.0.0",
        "performance_details": {"seconds_to_create": 90, "seconds_to_review": 0, "skipped": False},
        "annotations": {"frames": frames, "segments": segments,
                        "key_frame_feature_map": {f: [a, b] for f, [[a, b]] in segments.items()},
                        "classifications": []}}]
    return {"data_row": {"id": f"clbenchdr{i:016d}", "global_key": key, "external_id": key,
                         "row_data": f"https://storage.labelbox.com/org%2F{i}-{key}?Expires=1&Signature=x"},
            "media_attributes": {"asset_type": "video", "mime_type": "video/mp4", "width": 640, "height": 360,
                                 "frame_rate": 10, "frame_count": 60, "duration": 6.0},
            "projects": {PROJECT: {"name": "bench", "labels": labels}}}


def cases(scale: float) -> list:
    rows = max(200, int(66_000 * scale))
    labelled = rows // 2
    doubles = int(43_000 * scale) - labelled  # labelled rows with two traces instead of one
    tmp = Path(tempfile.mkdtemp(prefix="bench_labelbox_"))
    atexit.register(shutil.rmtree, tmp, True)
    export, media, out = tmp / "export.ndjson", tmp / "media", tmp / "out"
    media.mkdir()
    traces = 0
    with export.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            n = 0 if i % 2 else (2 if i // 2 < doubles else 1)
            traces += n
            fh.write(json.dumps(_row(i, n)) + "\n")
            (media / f"bench_{i:06d}.mp4").touch()

    def parse() -> int:  # the baseline: orjson over every line, as the converter reads them
        with export.open("rb") as fh:
            return sum(1 for line in fh if orjson.loads(line))

    def parse_json() -> int:
        with export.open(encoding="utf-8") as fh:
            return sum(1 for line in fh if json.loads(line))

    argv = [str(export), "--media-root", str(media), "--out", str(out), "-q"]

    def convert() -> int:
        return main(argv)

    def extra() -> dict[str, float]:
        """`json.loads` of the same lines (median of 3), and the peak RSS of a fresh process converting the export
        (tracemalloc sees the Python heap only)."""
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            parse_json()
            times.append(time.perf_counter() - t0)
        code = ("import resource, sys; from converters.labelbox_to_swift import main; main(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True,
                              check=True)
        return {"json.loads per line s": statistics.median(times), "peak RSS MB": int(done.stdout.split()[-1]) / 1024}

    mb = export.stat().st_size / 1e6
    name = f"labelbox v2 → swift ({rows:,} rows, {traces:,} traces, {mb:.0f} MB)"
    return [Case(name, parse, convert, baseline_label="orjson.loads per line", note="media probing excluded",
                 units=rows, extra=extra)]
