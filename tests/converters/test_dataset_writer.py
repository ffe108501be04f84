"""converters/dataset_writer.py: the split rule, and the sample records the writer writes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from converters import dataset_writer
from converters.dataset_writer import (
    MANIFEST,
    SPLITS,
    VARIANTS,
    DatasetWriter,
    SplitRule,
    Trace,
    Video,
    summary,
)
from prompts import deeptrace as prompts
from prompts.deeptrace_categories import load_category_map

PAPER_MAP = load_category_map()

# --------------------------------------------------------------------------------------------------------------------
# Split


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40, unique=True),
       st.lists(st.text(min_size=1, max_size=12), max_size=40, unique=True), st.integers(0, 2**31))
def test_split_is_stable_when_videos_are_added(ids, more, seed):
    rule = SplitRule.parse("8:1:1", seed)
    before = {v: rule.assign(v) for v in ids}
    after = {v: SplitRule.parse("8:1:1", seed).assign(v) for v in more + ids}  # fresh rule, more videos, new order
    assert all(after[v] == before[v] for v in ids)


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)).filter(lambda r: sum(r) > 0))
def test_zero_ratio_split_gets_nothing(ratios):
    rule = SplitRule(ratios, 0)
    got = {rule.assign(f"video_{i}") for i in range(300)}
    for name, r in zip(SPLITS, ratios, strict=True):
        if r == 0:
            assert name not in got


@pytest.mark.parametrize("prefix", ["fake_", "real_"])
def test_split_proportions(prefix):
    rule = SplitRule.parse("8:1:1", 0)
    n = 20000
    counts = {s: 0 for s in SPLITS}
    for i in range(n):
        counts[rule.assign(f"{prefix}{i:06d}.mp4")] += 1
    # binomial standard deviation for p=0.1 is ~0.2 %; 1 % is five of them
    assert abs(counts["train"] / n - 0.8) < 0.01
    assert abs(counts["val"] / n - 0.1) < 0.01
    assert abs(counts["test"] / n - 0.1) < 0.01


def test_split_depends_on_seed_and_parse_errors():
    ids = [f"v{i}" for i in range(200)]
    assert [SplitRule.parse("8:1:1", 0).assign(v) for v in ids] != [SplitRule.parse("8:1:1", 1).assign(v) for v in ids]
    for bad in ("8:1", "a:b:c", "0:0:0", "-1:1:1", "8:1:1:1"):
        with pytest.raises(UserError, match="--split"):
            SplitRule.parse(bad)


# --------------------------------------------------------------------------------------------------------------------
# Sample records: what DatasetWriter writes parses back to this record, key order included


def _record(video: Video, trace: Trace | None, variant: str, fmt: str, split: str) -> dict:
    """The sample record as a dict, spelled out field by field: the reference for what the writer writes."""
    if trace is None:
        answer = prompts.REAL_ANSWER
        meta = {"bbox": None, "start": None, "end": None, "explanation": None, "categories": [], "tags": []}
    else:
        answer = prompts.fake_answer(prompts.answer_box(trace.bbox, fmt, video.width, video.height), trace.start,
                                     trace.explanation, variant, fmt)
        meta = {"bbox": [round(v, 3) for v in trace.bbox], "start": round(trace.start, 6),
                "end": None if trace.end is None else round(trace.end, 6),
                "explanation": trace.explanation, "categories": PAPER_MAP.map(trace.tags)[0] if trace.tags else [],
                "tags": list(trace.tags)}
    return {
        "messages": [{"role": "user", "content": prompts.question(variant, fmt)},
                     {"role": "assistant", "content": answer}],
        "videos": [str(video.path)],
        "meta": {
            "task": "deeptrace", "video_id": video.video_id, "label": video.label, "bbox": meta["bbox"],
            "start": meta["start"], "end": meta["end"], "width": video.width, "height": video.height,
            "duration": round(video.duration, 6), "fps": round(video.fps, 6), "explanation": meta["explanation"],
            "categories": meta["categories"], "tags": meta["tags"], "source": video.source, "variant": variant,
            "bbox_format": "pixels", "answer_bbox_format": fmt, "split": split,
            **({"frames": list(trace.frames)} if trace is not None and trace.frames else {}),
            **video.extra, **(trace.extra if trace is not None else {}),
        },
    }


def _write(tmp: Path, videos: list[Video], variants: list[str], fmt: str) -> dict[str, list[str]]:
    """Each variant's lines, in the order written, of the videos added to a DatasetWriter (each with its split)."""
    out = tmp / "out"
    with DatasetWriter(out, variants, fmt, None, subdirs=True) as writer:
        for video in videos:
            writer.add(video, "ctx")
        writer.commit(writer.stats())
    # split on "\n" only: str.splitlines() also splits on characters JSON strings hold unescaped, such as U+0085
    return {v: [line for s in SPLITS for line in (out / v / f"{s}.jsonl").read_text(encoding="utf-8").split("\n")
                if line] for v in variants}


_finite = st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6)
_positive = st.floats(0.01, 1e4) | st.integers(1, 10**4)
_text = st.none() | st.text(max_size=12)
# extras may hold what orjson does not write (integers beyond 64 bits) and override keys of meta (source, variant)
_extra = st.dictionaries(st.sampled_from(["trace_id", "object", "label_id", "data_row_id", "project_id", "x",
                                          "source", "variant"]),
                         st.none() | st.text(max_size=8) | _finite | st.integers(-10**20, 10**20)
                         | st.lists(st.integers(), max_size=2), max_size=3)
_trace = st.builds(Trace, bbox=st.tuples(_finite, _finite, _finite, _finite), start=_finite,
                   end=st.none() | _finite, explanation=_text,
                   tags=st.lists(st.sampled_from(["Object Distortion", "weird motion", "blurry", "radio_1"])
                                 | st.text(max_size=10), max_size=3),
                   frames=st.none() | st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)), extra=_extra)
_video = st.builds(Video, video_id=st.text(min_size=1, max_size=12), label=st.sampled_from(["fake", "real"]),
                   path=st.text(min_size=1, max_size=20), width=st.integers(1, 4000), height=st.integers(1, 4000),
                   fps=_positive, duration=_positive, source=_text, extra=_extra, traces=st.lists(_trace, max_size=3),
                   split=st.sampled_from(SPLITS))


@settings(max_examples=150, deadline=None)
@given(st.lists(_video, max_size=3, unique_by=(lambda v: v.video_id, lambda v: v.path)),  # one file a video
       st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=4, unique=True),
       st.sampled_from(prompts.BOX_FORMAT_NAMES))
def test_written_samples_parse_to_the_record(videos, variants, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        written = _write(Path(tmp), videos, variants, fmt)
    for v in variants:
        expected = [_record(video, trace, v, fmt, s) for s in SPLITS for video in videos if video.split == s
                    for trace in (video.traces if video.label == "fake" else [None])]
        # json.dumps of both sides: same values, same key order, an int still an int and a float still a float
        assert [json.dumps(json.loads(line)) for line in written[v]] == [json.dumps(r) for r in expected]


@pytest.mark.parametrize("bad", ["fps", "duration", "start", "end", "bbox", "extra"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_writer_refuses_numbers_json_cannot_hold(tmp_path, bad, value):
    """NaN or Infinity in a sample: an error naming the video, not `null` (what orjson writes) or `NaN` (not JSON)."""
    trace = Trace(bbox=(1.0, 2.0, 3.0, 4.0), start=0.5, end=1.0, explanation=None, tags=[])
    video = Video(video_id="v1", label="fake", path="/v.mp4", width=10, height=10, fps=25.0, duration=2.0,
                  traces=[trace], split="train")
    if bad in ("fps", "duration"):
        setattr(video, bad, value)
    elif bad in ("start", "end"):
        setattr(trace, bad, value)
    elif bad == "bbox":
        trace.bbox = (1.0, value, 3.0, 4.0)
    else:
        trace.extra = {"x": [value]}
    with pytest.raises(UserError, match="ctx: video v1: a number of its sample is not finite"):
        _write(tmp_path, [video], ["full"], "pixels")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------------
# One split per media file


def _fake(video_id: str, path: str, key: int | None = None, split: str | None = None) -> Video:
    trace = Trace(bbox=(1.0, 2.0, 3.0, 4.0), start=0.5, end=1.0, explanation=None, tags=[])
    return Video(video_id=video_id, label="fake", path=path, width=10, height=10, fps=4.0, duration=2.0,
                 traces=[trace], split=split, file_key=key)


def _ids_in_two_splits(rule: SplitRule) -> tuple[str, str]:
    ids = [f"clip_{i}.mp4" for i in range(50)]
    first = ids[0]
    return first, next(v for v in ids if rule.assign(v) != rule.assign(first))


def test_videos_sharing_a_file_share_its_split(tmp_path):
    rule = SplitRule.parse("1:1:1", 0)
    a, b = _ids_in_two_splits(rule)
    with DatasetWriter(tmp_path / "out", ["full"], "pixels", rule, subdirs=False) as writer:
        assert writer.add(_fake(a, "/m/a.mp4", 1), "row 1") == rule.assign(a)
        assert writer.add(_fake(b, "/m/b.mp4", 1), "row 2") == rule.assign(a)  # same bytes: a's split
        writer.add(_fake("c", "/m/c.mp4", 2), "row 3")
        stats = writer.stats()
    assert stats["media_files"] == {"identity": "size and first 64 KiB", "videos": 3, "files": 2,
                                    "videos_sharing_a_file": 1, "videos_moved_to_the_split_of_their_file": 1}
    line = summary(tmp_path / "out", {**stats, "skipped": {}})
    assert line.endswith("; 1 video(s) share a file with an earlier one, in its split (1 moved there)")


def test_released_splits_yield_to_the_file_and_a_clip_is_never_fake_and_real(tmp_path):
    with DatasetWriter(tmp_path / "out", ["full"], "pixels", None, subdirs=False) as writer:
        assert writer.add(_fake("a", "/m/a.mp4", 7, split="test"), "row 1") == "test"
        assert writer.add(_fake("a", "/m/a.mp4", 7, split="test"), "row 2") == "test"  # a's second trace
        assert writer.add(_fake("b", "/m/b.mp4", 7, split="train"), "row 3") == "test"  # moved to its file's
        assert writer.stats()["media_files"]["videos_moved_to_the_split_of_their_file"] == 1
        real = Video(video_id="r", label="real", path="/m/r.mp4", width=10, height=10, fps=4.0, duration=2.0,
                     split="train", file_key=7)
        with pytest.raises(UserError, match=r"real\.ctx: /m/r\.mp4 is the clip of real video r and of a fake video "
                                            r"before it"):
            writer.add(real, "real.ctx")
        with pytest.raises(UserError, match=r"row 5: video a is in split 'val' here and 'test' earlier"):
            writer.add(_fake("a", "/m/a.mp4", 7, split="val"), "row 5")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------------
# The output folder: one unit, a manifest of the run's own files, stale staging folders cleaned


def _run(out: Path, variants: list[str], subdirs: bool, tag: str, fail_after: int | None = None,
         monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Write one video per split, its explanation `tag` (which run wrote a line)."""
    videos = []
    for split in SPLITS:
        video = _fake(f"{tag}-{split}", f"/m/{tag}-{split}.mp4", split=split)
        video.traces[0].explanation = tag
        videos.append(video)
    if fail_after is not None:
        real_replace, calls = os.replace, []

        def replace(src, dst):  # the process is killed as it makes move number `fail_after` into `out`
            if Path(dst).is_relative_to(out):
                if len(calls) == fail_after:
                    raise KeyboardInterrupt
                calls.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(dataset_writer.os, "replace", replace)
    with DatasetWriter(out, variants, "pixels", None, subdirs=subdirs) as writer:
        for video in videos:
            writer.add(video, "ctx")
        writer.commit(writer.stats())


def _tags(path: Path) -> set[str]:
    return {json.loads(line)["meta"]["explanation"] for line in path.read_text().splitlines()}


def test_rerun_replaces_the_previous_run_and_keeps_the_users_files(tmp_path):
    out = tmp_path / "out"
    _run(out, list(VARIANTS), True, "one")
    (out / "notes.txt").write_text("mine")
    (out / "no_time" / "my_eval.json").write_text("{}")
    assert json.loads((out / MANIFEST).read_text())["files"][:4] == [
        "full/stats.json", "full/test.jsonl", "full/train.jsonl", "full/val.jsonl"]
    _run(out, ["full"], False, "two")  # one variant, at the top: the four variant folders of run one go
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "no_time", "notes.txt", "stats.json", "test.jsonl",
                                                     "train.jsonl", "val.jsonl"]
    assert sorted(p.name for p in (out / "no_time").iterdir()) == ["my_eval.json"]  # the user's file, and its folder
    assert _tags(out / "train.jsonl") == {"two"}
    _run(out, list(VARIANTS), True, "three")  # and back: run two's top-level files go
    assert sorted(p.name for p in out.iterdir()) == sorted([*VARIANTS, MANIFEST, "notes.txt"])
    assert json.loads((out / MANIFEST).read_text())["written_by"] == "labelbox_to_swift"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


@pytest.mark.parametrize("kill_at", range(0, 18))
def test_a_killed_swap_never_looks_complete(tmp_path, monkeypatch, kill_at):
    """Killed at each of the 17 moves of a --variant all run into the folder of an earlier one: every stats.json
    left is its run's, beside that run's JSONL files; the manifest, the last move, says the run is complete."""
    out = tmp_path / "out"
    _run(out, list(VARIANTS), True, "old")
    with pytest.raises(KeyboardInterrupt) if kill_at < 17 else contextlib.nullcontext():
        _run(out, list(VARIANTS), True, "new", fail_after=kill_at, monkeypatch=monkeypatch)
    for variant in VARIANTS:
        d = out / variant
        if (d / "stats.json").exists():
            assert {t for s in SPLITS for t in _tags(d / f"{s}.jsonl")} == {"new"}, variant
    if (out / MANIFEST).exists():
        assert kill_at == 17 and all((out / v / "stats.json").exists() for v in VARIANTS)


def test_stale_staging_is_removed_and_a_live_one_kept(tmp_path):
    out = tmp_path / "out"
    stale = tmp_path / ".out.0a1b2c3d.tmp"  # what a killed run leaves
    (stale / "full").mkdir(parents=True)
    (stale / "full" / "train.jsonl").write_text("half\n")
    live = tmp_path / ".out.0000beef.tmp"  # a run still going: it holds the folder's lock
    live.mkdir()
    fd = dataset_writer._lock(live)
    other = tmp_path / ".other.0a1b2c3d.tmp"  # another output's
    (tmp_path / ".out.notes.tmp").mkdir()  # a user's look-alike
    other.mkdir()
    try:
        _run(out, ["full"], False, "one")
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.0a1b2c3d.tmp", ".out.0000beef.tmp",
                                                            ".out.notes.tmp", "out"]


def test_a_manifest_that_is_not_ours_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text('{"written_by": "eval/report.py", "files": ["precious.bin"]}')
    (out / "precious.bin").write_text("x")
    with pytest.raises(UserError, match=r"--out .*out: its \.dataset-files\.json was not written by a "
                                        r"DeeptraceReward converter"):
        _run(out, ["full"], False, "one")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "precious.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
