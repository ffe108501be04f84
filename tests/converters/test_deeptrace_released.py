"""converters/deeptrace_to_swift.py on an all_data.json-shaped fixture (tests/fixtures/deeptracereward) with real mp4s.

The fixture's rows (all clips 64x48 at 4 fps unless probed; first frames are 1-based, start = (first - 1) / fps):
  1. vid_a, train: box {left 8, top 10, width 20, height 16} → [8, 10, 28, 26]; first frame 3 → start 2/4 = 0.5;
     duration 1.5 → end 2.0; explanation string; two categories.
  2. vid_a, train: {left 30, top 0, width 40, height 10} → [30, 0, 70, 10], clipped to [30, 0, 64, 10]; frame 7 →
     start 1.5, end 2.5; blank explanation → none; no categories.
  3. vid_b, val: whole frame [0, 0, 64, 48]; frame 1 → start 0.0; no duration → end null; explanations as a list;
     categories as one string.
  4./5. real_a, test, twice → one REAL sample, one duplicate counted.
  6. vid_c, test: no size/fps/duration → probed from the clip (64x48, 4 fps, 8 frames = 2.0 s); frame 5 → 1.0.
  7. vid_d: fake row without a box → skipped and counted.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
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
    assert stats["skipped"] == {"fake_rows_without_bbox": 1, "duplicate_fake_rows": 0, "duplicate_real_rows": 1,
                                "missing_media": 0, "traces_with_a_fractional_first_frame": 0,
                                "traces_ending_before_they_start": 0, "traces_starting_after_clip_end": 0,
                                "traces_ending_after_clip_end": 0}
    assert stats["adjusted"]["boxes_clipped"] == 1 and stats["adjusted"]["videos_probed_for_media_attributes"] == 1
    assert stats["splits"]["train"]["fake_videos"] == 1 and stats["splits"]["train"]["fake_samples"] == 2


def test_first_frame_base_and_variants(tmp_path, dataset):
    """Base 1 (default) reads first frames as LabelBox's; --first-frame-base 0 as first_frame / fps, a frame later."""
    rows, stats = run(dataset / "all_data.json", tmp_path / "zero", "--first-frame-base", "0", "--variant", "no_time")
    assert stats["first_frame_base"] == 0
    assert rows["train"][0]["meta"]["start"] == 0.75  # 3 / 4
    assert rows["val"][0]["meta"]["start"] == 0.25  # 1 / 4
    assert rows["train"][0]["messages"][0]["content"] == prompts.question("no_time")
    assert rows["train"][0]["messages"][1]["content"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [8, 10, 28, 26]. "
        "The reason is because The hand melts into the cup.")
    records = json.loads(DATA.read_text())
    records[2]["faketrace_first_frame"] = 0  # impossible for a 1-based frame: the data says which base it uses
    (tmp_path / "all_data.json").write_text(json.dumps(records))
    with pytest.raises(UserError, match=r"record 3 \(video vid_b\): faketrace_first_frame 0 is below 1: the frames "
                                        r"of this file count from 0; pass --first-frame-base 0"):
        run(tmp_path / "all_data.json", tmp_path / "x", "--media-root", str(dataset))
    assert not (tmp_path / "x").exists()
    rows, _ = run(tmp_path / "all_data.json", tmp_path / "ok", "--media-root", str(dataset), "--first-frame-base", "0")
    assert rows["val"][0]["meta"]["start"] == 0.0


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


# --------------------------------------------------------------------------------------------------------------------
# Trustworthy data: traces inside their clip, duplicates, one split per clip, real-world files


def _records(tmp_path: Path, mutate) -> Path:
    records = json.loads(DATA.read_text())
    mutate(records)
    (tmp_path / "all_data.json").write_text(json.dumps(records))
    return tmp_path / "all_data.json"


@pytest.mark.parametrize("mutate, pattern", [
    # frame 1000 of a 4 s clip at 4 fps: it was written as a start of 250 s
    (lambda rs: rs[0].update(faketrace_first_frame=1000),
     r"record 1 \(video vid_a\): faketrace_first_frame 1000, faketrace_duration 1\.5 \(249\.750-251\.250 s\) starts "
     r"after its clip \(4\.000 s, 16 frames at 4 fps; one frame of tolerance\); pass --skip-invalid"),
    (lambda rs: rs[0].update(faketrace_duration=3.9),  # 0.5 + 3.9 > 4.0 + 0.25
     r"record 1 \(video vid_a\): .* \(0\.500-4\.400 s\) ends after its clip"),
    (lambda rs: rs[0].update(faketrace_first_frame=2.5),
     r"record 1 \(video vid_a\): faketrace_first_frame 2\.5 has a fraction; frame numbers are whole"),
    (lambda rs: rs[0].update(faketrace_duration=-1),
     r"record 1 \(video vid_a\): faketrace_duration -1 is negative"),
])
def test_invalid_traces_fail_or_are_counted(tmp_path, dataset, mutate, pattern):
    data = _records(tmp_path, mutate)
    with pytest.raises(UserError, match=pattern):
        run(data, tmp_path / "x", "--media-root", str(dataset))
    assert not (tmp_path / "x").exists()
    rows, stats = run(data, tmp_path / "out", "--media-root", str(dataset), "--skip-invalid")
    assert [r["meta"]["start"] for r in rows["train"]] == [1.5]  # record 1 left out, record 2 kept
    assert sum(stats["skipped"][k] for k in ("traces_with_a_fractional_first_frame", "traces_ending_before_they_start",
                                             "traces_starting_after_clip_end", "traces_ending_after_clip_end")) == 1


def test_one_frame_of_tolerance(tmp_path, dataset):
    data = _records(tmp_path, lambda rs: rs[0].update(faketrace_first_frame=17, faketrace_duration=0.25))
    rows, _ = run(data, tmp_path / "out", "--media-root", str(dataset))  # frame 17 of 16: 4.0-4.25 s, kept
    assert (rows["train"][0]["meta"]["start"], rows["train"][0]["meta"]["end"]) == (4.0, 4.25)


def test_duplicate_fake_rows_are_dropped_and_counted(tmp_path, dataset, capsys):
    data = _records(tmp_path, lambda rs: rs.insert(1, dict(rs[0])))
    rows, stats = run(data, tmp_path / "out", "--media-root", str(dataset))
    assert [r["meta"]["start"] for r in rows["train"]] == [0.5, 1.5]
    assert stats["skipped"]["duplicate_fake_rows"] == 1 and stats["rows_read"] == 8


def test_rows_sharing_a_clip_share_a_split(tmp_path, dataset):
    """vid_e (test) is vid_a's clip under another name, identical bytes: it joins vid_a in train, counted."""
    (tmp_path / "videos").mkdir()
    for clip in (dataset / "videos").iterdir():
        (tmp_path / "videos" / clip.name).symlink_to(clip)
    (tmp_path / "real_videos").symlink_to(dataset / "real_videos")
    shutil.copy(dataset / "videos" / "vid_a.mp4", tmp_path / "videos" / "vid_e.mp4")

    def add(rs):
        rs.append({**rs[0], "video_id": "vid_e", "video_path": "videos/vid_e.mp4", "split": "test"})
    data = _records(tmp_path, add)
    rows, stats = run(data, tmp_path / "out")
    assert [r["meta"]["video_id"] for r in rows["train"]] == ["vid_a", "vid_a", "vid_e"]
    assert all(r["meta"]["split"] == "train" for r in rows["train"])
    assert stats["media_files"]["videos_sharing_a_file"] == 1
    assert stats["media_files"]["videos_moved_to_the_split_of_their_file"] == 1
    rows, _ = run(data, tmp_path / "resplit", "--split", "1:1:1", "--seed", "5")
    where = {r["meta"]["video_id"]: s for s, items in rows.items() for r in items}
    assert where["vid_e"] == where["vid_a"]


def test_gzip_bom_and_broken_files(tmp_path, dataset):
    ref, _ = run(dataset / "all_data.json", tmp_path / "ref")
    raw = DATA.read_bytes()
    (tmp_path / "all_data.json.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + raw))
    lines = "".join(json.dumps(r) + "\r\n" for r in json.loads(raw)).encode()
    (tmp_path / "all_data.jsonl.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + lines))
    for name in ("all_data.json.gz", "all_data.jsonl.gz"):
        rows, _ = run(tmp_path / name, tmp_path / f"out_{name}", "--media-root", str(dataset))
        assert rows == ref, name
    latin1 = raw.replace(b"The ball vanishes.", "Le ballon disparaît.".encode("latin-1"))
    (tmp_path / "all_data.json").write_bytes(latin1)
    proc = run_main(main, [tmp_path / "all_data.json", "--out", tmp_path / "o2", "--media-root", dataset], prog=CLI)
    line = latin1.split(b"\n")[_line_of(latin1, b"Le ballon") - 1]
    column = line.index("î".encode("latin-1")) + 1
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"deeptrace_to_swift.py: error: {tmp_path / 'all_data.json'}:{_line_of(raw, b'The ball vanishes.')}: not "
        f"UTF-8 text (invalid continuation byte at byte {column} of the line)"]
    assert not (tmp_path / "o2").exists()


def _line_of(raw: bytes, text: bytes) -> int:
    return raw[:raw.index(text)].count(b"\n") + 1


def test_an_empty_fake_clip_is_refused(tmp_path, dataset):
    (tmp_path / "videos").mkdir()
    for clip in (dataset / "videos").iterdir():
        (tmp_path / "videos" / clip.name).symlink_to(clip)
    (tmp_path / "real_videos").symlink_to(dataset / "real_videos")
    (tmp_path / "videos" / "vid_b.mp4").unlink()
    (tmp_path / "videos" / "vid_b.mp4").touch()
    with pytest.raises(UserError, match=r"record 3 \(video vid_b\): .*vid_b\.mp4 is an empty file, not a video"):
        run(_records(tmp_path, lambda rs: None), tmp_path / "out")


def test_tags_map_to_the_papers_categories(tmp_path, dataset, capsys):
    """meta.tags keeps the raw faketrace_check_applies; meta.categories has the paper's names (multi-label), an
    unmapped tag kept as it is; stats.json and the summary count them in the paper's order; --category-map swaps the
    map."""
    def retag(rs):
        rs[0]["faketrace_check_applies"] = ["weird motion", "shape distortion", "light effect"]
        rs[1]["faketrace_check_applies"] = ["appearance", "overlap"]
        rs[2]["faketrace_check_applies"] = "still things"
    data = _records(tmp_path, retag)
    assert main([str(data), "--out", str(tmp_path / "out"), "--media-root", str(dataset)]) == 0
    rows = {s: [json.loads(x) for x in (tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()] for s in
            ("train", "val", "test")}
    got = [(r["meta"]["categories"], r["meta"]["tags"]) for r in rows["train"] + rows["val"]]
    assert got == [(["Object Trajectory", "Object Distortion", "light effect"],
                    ["weird motion", "shape distortion", "light effect"]),
                   (["Redundant Object", "Object Merging"], ["appearance", "overlap"]),
                   (["Unexpected Move"], ["still things"])]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert list(stats["categories"]["total"].items()) == [  # the paper's order, then the unmapped tag
        ("Object Distortion", 1), ("Object Trajectory", 1), ("Redundant Object", 1), ("Object Merging", 1),
        ("Object Disappearance", 1), ("Unexpected Move", 1), ("light effect", 1)]
    assert stats["categories"]["unmapped_tags"] == {"light effect": 1}
    assert stats["categories"]["map"].endswith("prompts/deeptrace/categories.yaml")
    line = capsys.readouterr().out
    assert ("; traces per category: Object Distortion 1, Object Trajectory 1, Redundant Object 1, Object Merging 1, "
            "Object Disappearance 1, Unexpected Move 1, light effect 1; tags no category covers (kept as they are): "
            "light effect 1") in line
    ours = tmp_path / "ours.yaml"
    ours.write_text("categories:\n  - name: Motion\n    rules:\n      - pattern: 'motion|still'\n")
    rows, stats = run(data, tmp_path / "custom", "--media-root", str(dataset), "--category-map", str(ours))
    assert [r["meta"]["categories"] for r in rows["train"]] == [["Motion", "shape distortion", "light effect"],
                                                                 ["appearance", "overlap"]]
    assert stats["categories"]["map"] == str(ours)
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [\n")
    proc = _cli(tmp_path, json.loads(data.read_text()), "--media-root", str(dataset), "--category-map", str(bad))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"deeptrace_to_swift.py: error: {bad}: not valid YAML: " + proc.stderr.split("not valid YAML: ")[1].strip()]
