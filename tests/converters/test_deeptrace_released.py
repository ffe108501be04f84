"""converters/deeptrace_to_swift.py on an all_data.json-shaped fixture (tests/fixtures/deeptracereward) with real mp4s.

The fixture's rows (all clips 64x48 at 4 fps unless probed):
  1. vid_a, train: box {left 8, top 10, width 20, height 16} → [8, 10, 28, 26]; first frame 2 → start 2/4 = 0.5;
     duration 1.5 → end 2.0; explanation string; two categories.
  2. vid_a, train: {left 30, top 0, width 40, height 10} → [30, 0, 70, 10], clipped to [30, 0, 64, 10]; frame 6 →
     start 1.5, end 2.5; blank explanation → none; no categories.
  3. vid_b, val: whole frame [0, 0, 64, 48]; frame 0 → start 0.0; no duration → end null; explanations as a list;
     categories as one string.
  4./5. real_a, test, twice → one REAL sample, one duplicate counted.
  6. vid_c, test: no size/fps/duration → probed from the clip (64x48, 4 fps, 8 frames = 2.0 s); frame 4 → 1.0.
  7. vid_d: fake row without a box → skipped and counted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from converters.deeptrace_to_swift import main
from prompts import deeptrace as prompts
from tests.support.cli import run_main
from tests.support.media import write_mp4

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "fixtures" / "deeptracereward" / "all_data.json"
CLI = ROOT / "converters" / "deeptrace_to_swift.py"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A dataset root: all_data.json beside videos/ and real_videos/."""
    root = tmp_path_factory.mktemp("RewardData")
    (root / "all_data.json").write_bytes(DATA.read_bytes())
    for i, vid in enumerate(("vid_a", "vid_b", "vid_d")):
        write_mp4(root / "videos" / f"{vid}.mp4", i, fps=4, frames=16)
    write_mp4(root / "videos" / "vid_c.mp4", 3, fps=4, frames=8)
    write_mp4(root / "real_videos" / "real_a.mp4", 4, fps=4, frames=8)
    return root


def run(data: Path, out: Path, *extra: str) -> tuple[dict[str, list[dict]], dict]:
    assert main([str(data), "--out", str(out), "-q", *extra]) == 0
    rows = {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text().splitlines()] for s in ("train", "val", "test")}
    return rows, json.loads((out / "stats.json").read_text())


def test_released_split_and_fields(tmp_path, dataset):
    rows, stats = run(dataset / "all_data.json", tmp_path / "out")
    got = {s: [(r["meta"]["video_id"], r["meta"]["bbox"], r["meta"]["start"], r["meta"]["end"],
                r["meta"]["explanation"], r["meta"]["categories"]) for r in rows[s]] for s in rows}
    assert got == {
        "train": [("vid_a", [8, 10, 28, 26], 0.5, 2.0, "The hand melts into the cup.",
                   ["Object Distortion", "Sudden Blurring"]),
                  ("vid_a", [30, 0, 64, 10], 1.5, 2.5, None, [])],
        "val": [("vid_b", [0, 0, 64, 48], 0.0, None, "Part one. Part two.", ["Unexpected Move"])],
        "test": [("real_a", None, None, None, None, []),
                 ("vid_c", [4, 4, 12, 12], 1.0, 1.5, "The ball vanishes.", ["Object Disappearance"])],
    }
    vid_c = rows["test"][1]["meta"]
    assert (vid_c["width"], vid_c["height"], vid_c["fps"], vid_c["duration"]) == (64, 48, 4, 2.0)
    real = rows["test"][0]
    assert real["messages"][1]["content"] == prompts.REAL_ANSWER and real["meta"]["label"] == "real"
    assert real["videos"] == [str((dataset / "real_videos" / "real_a.mp4").resolve())]
    first = rows["train"][0]
    assert first["messages"][1]["content"] == prompts.fake_answer([8, 10, 28, 26], 0.5, "The hand melts into the cup.")
    assert first["meta"]["source"] == "Sora"
    assert stats["skipped"] == {"fake_rows_without_bbox": 1, "duplicate_real_rows": 1, "missing_media": 0}
    assert stats["adjusted"]["boxes_clipped"] == 1 and stats["adjusted"]["videos_probed_for_media_attributes"] == 1
    assert stats["splits"]["train"]["fake_videos"] == 1 and stats["splits"]["train"]["fake_samples"] == 2


def test_first_frame_base_and_variants(tmp_path, dataset):
    with pytest.raises(UserError, match=r"record 3 \(video vid_b\): faketrace_first_frame 0 is below 1"):
        run(dataset / "all_data.json", tmp_path / "x", "--first-frame-base", "1")  # vid_b's frame 0
    assert not (tmp_path / "x").exists()
    records = json.loads(DATA.read_text())
    records[2]["faketrace_first_frame"] = 1
    (tmp_path / "all_data.json").write_text(json.dumps(records))
    rows, _ = run(tmp_path / "all_data.json", tmp_path / "out", "--media-root", str(dataset),
                  "--first-frame-base", "1", "--variant", "no_time")
    assert rows["train"][0]["meta"]["start"] == 0.25  # (2 - 1) / 4
    assert rows["val"][0]["meta"]["start"] == 0.0  # (1 - 1) / 4
    assert rows["train"][0]["messages"][0]["content"] == prompts.question("no_time")
    assert rows["train"][0]["messages"][1]["content"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [8, 10, 28, 26]. "
        "The reason is because The hand melts into the cup.")


def test_resplit_by_video(tmp_path, dataset):
    rows, stats = run(dataset / "all_data.json", tmp_path / "a", "--split", "1:1:1", "--seed", "3")
    where = {}
    for split, items in rows.items():
        for r in items:
            assert where.setdefault(r["meta"]["video_id"], split) == split
    assert sorted(where) == ["real_a", "vid_a", "vid_b", "vid_c"]
    again, _ = run(dataset / "all_data.json", tmp_path / "b", "--split", "1:1:1", "--seed", "3")
    assert again == rows
    assert stats["split"]["seed"] == 3


def _cli(tmp_path: Path, records, *extra: str, process: bool = False) -> subprocess.CompletedProcess:
    """The CLI's main in this process (tests/support/cli.py), or with `process` as a real one."""
    data = tmp_path / "all_data.json"
    data.write_text(records if isinstance(records, str) else json.dumps(records))
    argv = [str(data), "--out", str(tmp_path / "out"), *extra]
    if process:
        return subprocess.run([sys.executable, str(CLI), *argv], capture_output=True, text=True, timeout=60)
    return run_main(main, argv, prog=CLI)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda rs: rs[0].pop("split"), r"record 1 \(video vid_a\): split is None; expected train, val or test"),
    (lambda rs: rs[1].update(split="test"), r"record 2 \(video vid_a\): video vid_a is in split 'test' here and "
                                            r"'train' earlier"),
    (lambda rs: rs[2].update(video_type="synthetic"), r"record 3: video_type is 'synthetic'"),
    (lambda rs: rs[0]["faketrace_bbox"].update(width=0), r"record 1 \(video vid_a\): faketrace_bbox: zero-area"),
    (lambda rs: rs[0].update(video_frame_rate=0), r"record 1 \(video vid_a\): frame rate is 0; it must be > 0"),
    (lambda rs: rs[0].update(faketrace_first_frame="soon"), r"faketrace_first_frame is 'soon', not a number"),
    (lambda rs: rs[0].update(video_path="videos/nope.mp4", video_id="nope"),
     r"1 video file\(s\) not found under .*: nope \(.*record 1"),
])
def test_bad_records(tmp_path, dataset, mutate, pattern):
    records = json.loads(DATA.read_text())
    mutate(records)
    (tmp_path / "videos").symlink_to(dataset / "videos")
    (tmp_path / "real_videos").symlink_to(dataset / "real_videos")
    proc = _cli(tmp_path, records)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deeptrace_to_swift.py: error: "), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all_data.json", "real_videos", "videos"]


def test_missing_media_skip(tmp_path, dataset):
    records = json.loads(DATA.read_text())
    records[2]["video_path"] = "videos/gone.mp4"
    records[2]["video_id"] = "gone"
    (tmp_path / "all_data.json").write_text(json.dumps(records))
    rows, stats = run(tmp_path / "all_data.json", tmp_path / "out", "--media-root", str(dataset), "--skip-missing")
    assert [m["video_id"] for m in stats["missing_media"]] == ["gone"]
    assert rows["val"] == []


def test_empty_or_wrong_file(tmp_path):
    for text, pattern in (("", "the data file is empty"), ("[]", "empty JSON array"),
                          ("nonsense", "expected a JSON array")):
        proc = _cli(tmp_path, text, process=not text)  # the empty file in a real process: one line, exit code 2
        assert proc.returncode == 2 and pattern in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
