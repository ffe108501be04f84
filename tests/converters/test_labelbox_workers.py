"""labelbox_to_swift.py with worker processes (`--workers`): the same output, byte for byte, and the same errors as
one pass, on an export cut into many chunks (real forked workers, real mp4 files)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import converters.labelbox_to_swift as lb
from common.errors import UserError
from common.parallel import usable_cpus
from tests.support.media import write_mp4

ROOT = Path(__file__).resolve().parents[2]
PITFALLS = ROOT / "tests" / "fixtures" / "labelbox" / "v2_pitfalls.ndjson"
ROWS = [json.loads(line) for line in PITFALLS.read_text().splitlines()]  # 8 rows, one project, every pitfall


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    for i, row in enumerate(ROWS):
        write_mp4(d / row["data_row"]["global_key"], i)
    write_mp4(d / "shared.mp4", 99)
    return d


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("real")
    write_mp4(d / "r1.mp4", 31, width=64, height=48, fps=4, frames=8)
    write_mp4(d / "r2.mp4", 32, width=32, height=24, fps=8, frames=12)
    return d


def replicated(tmp_path: Path, clips: Path, copies: int) -> tuple[Path, Path]:
    """`copies` copies of the pitfall rows, each a new data row and video; copy k's videos are links to the clips,
    except every 7th copy's (missing: for --skip-missing) and every 10th's, found by external_id as one shared file
    (videos sharing a file, across chunks)."""
    media = tmp_path / "media"
    media.mkdir()
    lines = []
    for k in range(copies):
        for row in ROWS:
            row = copy.deepcopy(row)
            dr = row["data_row"]
            name = dr["global_key"]
            dr["id"] += f"k{k}"
            dr["global_key"] = f"c{k}_{name}"
            dr["external_id"] = "shared.mp4" if k % 10 == 5 else dr["global_key"]
            if k % 10 == 5:
                (media / "shared.mp4").exists() or os.symlink(clips / "shared.mp4", media / "shared.mp4")
            elif k % 7 != 3:
                os.symlink(clips / name, media / dr["global_key"])
            lines.append(json.dumps(row))
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join(lines) + "\n")
    return export, media


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of ~16 KB (about eight rows), so that a small export spreads over many chunks and both workers."""
    monkeypatch.setattr(lb, "MIN_CHUNK_BYTES", 16_000)
    monkeypatch.setattr(lb, "MAX_CHUNK_BYTES", 16_000)
    calls = []
    one_pass = lb.convert_export

    def spy(*args, **kwargs):  # the real one-pass conversion, noting that it ran
        calls.append(1)
        return one_pass(*args, **kwargs)

    monkeypatch.setattr(lb, "convert_export", spy)
    return calls


def test_workers_write_what_one_pass_writes(tmp_path, clips, real, small_chunks):
    export, media = replicated(tmp_path, clips, 30)  # 240 rows, ~530 KB: 31 chunks
    common = [str(export), "--media-root", str(media), "--real-videos", str(real), "--skip-missing", "-q",
              "--labels", "all", "--variant", "all", "--bbox-mode", "union"]
    assert lb.main([*common, "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert small_chunks == [1]
    assert lb.main([*common, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert small_chunks == [1]  # the chunked conversion did not fall back to one pass
    one, two = outputs(tmp_path / "one"), outputs(tmp_path / "two")
    assert len(one) == 4 * 4 and one == two  # 4 variants x (3 splits + stats.json), byte for byte
    stats = json.loads(one["full/stats.json"])
    # what a mistake in merging would break: counts over chunks, the order of missing media, shared files
    assert stats["rows_read"] == 240
    assert stats["skipped"]["missing_media"] == 4 * 6  # copies 3, 10, 17, 24: six rows each with labels
    assert [m["where"] for m in stats["missing_media"]] == sorted(
        (m["where"] for m in stats["missing_media"]), key=lambda w: int(w.rsplit(":", 1)[1]))
    assert stats["adjusted"]["videos_sharing_a_file"] == 3 * 6 - 1  # copies 5, 15, 25: 6 fake videos each
    assert stats["total"]["real_videos"] == 2


@pytest.mark.parametrize("case", ["bad_json", "duplicate_row", "second_project", "unknown_project", "missing_media",
                                  "bad_width"])
def test_workers_fail_as_one_pass_fails(tmp_path, clips, small_chunks, case):
    export, media = replicated(tmp_path, clips, 12)
    lines = export.read_text().splitlines()
    extra: list[str] = []
    if case == "bad_json":
        lines[70] = "{not json"
    elif case == "duplicate_row":
        lines.append(lines[2])  # the first copy's row C again, chunks later
    elif case == "second_project":
        lines[80] = lines[80].replace("clpitproj0000000000000001", "clpitproj0000000000000002")
    elif case == "unknown_project":
        extra = ["--project-id", "clnope"]
    elif case == "bad_width":
        lines[90] = lines[90].replace('"width": ', '"width": -', 1)
    export.write_text("\n".join(lines) + "\n")
    argv = [str(export), "--media-root", str(media), "-q", *extra]  # missing_media: no --skip-missing
    errors = []
    for workers in ("1", "2"):
        with pytest.raises(UserError) as exc:
            lb.main([*argv, "--out", str(tmp_path / f"out{workers}"), "--workers", workers])
        errors.append(str(exc.value))
    assert errors[0] == errors[1]
    assert f"{export}:" in errors[0] or case == "missing_media"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.ndjson", "media"]  # nothing written, no staging
    # every case but missing media (found after the last row either way) makes the chunked pass give up
    assert small_chunks == ([1] if case == "missing_media" else [1, 1])


def test_cli_with_workers_on_a_multi_chunk_export(tmp_path, clips):
    """The command itself, its workers forked from a fresh interpreter: a 2.4 MB export is three 1 MiB chunks."""
    export, media = replicated(tmp_path, clips, 137)
    assert export.stat().st_size > 2 * lb.MIN_CHUNK_BYTES
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        proc = subprocess.run([sys.executable, "converters/labelbox_to_swift.py", str(export), "--media-root",
                               str(media), "--skip-missing", "--out", str(out), "--workers", workers],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out}: train " in proc.stdout
        outs[workers] = outputs(out)
    assert outs["1"] == outs["2"]
    assert json.loads(outs["2"]["stats.json"])["rows_read"] == 137 * 8


def test_workers_auto(tmp_path, monkeypatch):
    big = tmp_path / "export.ndjson"
    big.write_text("x" * 100)
    assert lb._workers("auto", big, "v2-ndjson") == 1  # small: one pass
    monkeypatch.setattr(lb, "PARALLEL_MIN_BYTES", 100)
    assert lb._workers("auto", big, "v2-ndjson") == min(usable_cpus(), 8)
    assert lb._workers(3, big, "v2-ndjson") == 3
    assert lb._workers(3, big, "v1") == 1  # one JSON document: nothing to cut
    assert lb._workers(3, big, "v2-json") == 1


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_flag_errors(tmp_path, value):
    proc = subprocess.run([sys.executable, "converters/labelbox_to_swift.py", str(PITFALLS), "--out",
                           str(tmp_path / "out"), "--workers", value], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"labelbox_to_swift.py: error: argument --workers: expected a number of processes (1 or more) or auto, "
        f"got {value!r} (see --help)"]


_convert_chunk = lb._convert_chunk


def _killed_at_line_50(chunk):
    """The worker's task, but the worker dies on the chunk with line 50, as the kernel's OOM killer would end it."""
    if chunk.first_line <= 50 < chunk.first_line + chunk.lines:
        os._exit(137)
    return _convert_chunk(chunk)


def test_a_worker_killed_midway_falls_back_to_one_pass(tmp_path, clips, small_chunks, monkeypatch):
    export, media = replicated(tmp_path, clips, 12)
    monkeypatch.setattr(lb, "_convert_chunk", _killed_at_line_50)
    argv = [str(export), "--media-root", str(media), "--skip-missing", "-q"]
    assert lb.main([*argv, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert small_chunks == [1]  # the one-pass conversion did the work
    assert lb.main([*argv, "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
