"""converters/dataset_writer.py: the split rule, and the sample records the writer writes."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from converters.dataset_writer import SPLITS, VARIANTS, DatasetWriter, SplitRule, Trace, Video, answer_bbox
from prompts import deeptrace as prompts

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
        meta = {"bbox": None, "start": None, "end": None, "explanation": None, "categories": []}
    else:
        answer = prompts.fake_answer(answer_bbox(trace.bbox, video.width, video.height, fmt), trace.start,
                                     trace.explanation, variant, bbox_decimals=3 if fmt == "norm1" else 0)
        meta = {"bbox": [round(v, 3) for v in trace.bbox], "start": round(trace.start, 6),
                "end": None if trace.end is None else round(trace.end, 6),
                "explanation": trace.explanation, "categories": list(trace.categories)}
    return {
        "messages": [{"role": "user", "content": prompts.question(variant)},
                     {"role": "assistant", "content": answer}],
        "videos": [str(video.path)],
        "meta": {
            "task": "deeptrace", "video_id": video.video_id, "label": video.label, "bbox": meta["bbox"],
            "start": meta["start"], "end": meta["end"], "width": video.width, "height": video.height,
            "duration": round(video.duration, 6), "fps": round(video.fps, 6), "explanation": meta["explanation"],
            "categories": meta["categories"], "source": video.source, "variant": variant, "bbox_format": "pixels",
            "answer_bbox_format": fmt, "split": split,
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
                   categories=st.lists(st.text(max_size=10), max_size=3),
                   frames=st.none() | st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)), extra=_extra)
_video = st.builds(Video, video_id=st.text(min_size=1, max_size=12), label=st.sampled_from(["fake", "real"]),
                   path=st.text(min_size=1, max_size=20), width=st.integers(1, 4000), height=st.integers(1, 4000),
                   fps=_positive, duration=_positive, source=_text, extra=_extra, traces=st.lists(_trace, max_size=3),
                   split=st.sampled_from(SPLITS))


@settings(max_examples=150, deadline=None)
@given(st.lists(_video, max_size=3, unique_by=lambda v: v.video_id),
       st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=4, unique=True),
       st.sampled_from(["abs", "norm1000", "norm1"]))
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
    trace = Trace(bbox=(1.0, 2.0, 3.0, 4.0), start=0.5, end=1.0, explanation=None, categories=[])
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
        _write(tmp_path, [video], ["full"], "abs")
    assert not (tmp_path / "out").exists()
