"""converters/boxes.py and converters/labelbox_traces.py: boxes, interpolation and union, classification facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from converters.boxes import clip_box, ltwh_box
from converters.labelbox_traces import box_at, classification_facts, union_box

REF_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "labelbox" / "v1_frames_inlined.json"


# --------------------------------------------------------------------------------------------------------------------
# Boxes


def test_ltwh_box_and_zero_area():
    assert ltwh_box({"top": 98.0, "left": 146.0, "height": 243.0, "width": 236.0}, "x") == (146.0, 98.0, 382.0, 341.0)
    with pytest.raises(UserError, match="x: zero-area bounding box"):
        ltwh_box({"top": 1, "left": 1, "height": 0, "width": 5}, "x")
    with pytest.raises(UserError, match="has no 'width'"):
        ltwh_box({"top": 1, "left": 1, "height": 3}, "x")
    with pytest.raises(UserError, match="not a number"):
        ltwh_box({"top": 1, "left": "a", "height": 3, "width": 2}, "x")


def test_box_at_tweens_and_holds():
    anchors = [(1, (0.0, 0.0, 10.0, 10.0)), (5, (20.0, 10.0, 30.0, 20.0)), (9, (20.0, 10.0, 40.0, 30.0))]
    assert box_at(anchors, 1) == (0, 0, 10, 10)
    assert box_at(anchors, 3) == (10, 5, 20, 15)  # halfway between the keyframes at 1 and 5
    assert box_at(anchors, 7) == (20, 10, 35, 25)
    assert box_at(anchors, 9) == (20, 10, 40, 30)
    assert box_at(anchors, 12) == (20, 10, 40, 30)  # held after the last keyframe
    assert box_at([(4, (1.0, 2.0, 3.0, 4.0))], 2) == (1, 2, 3, 4)  # held before the first


def test_interpolation_reproduces_labelbox_tweens():
    """The SDK's v1 fixture materialises Labelbox's own tweens (keyframe: false). Rebuilding them from the keyframes
    alone must give the same boxes (Labelbox rounds to 3 decimals)."""
    item = json.loads(REF_V1.read_text())[0]
    tracks: dict[str, dict[int, tuple]] = {}
    keys: dict[str, dict[int, tuple]] = {}
    for frame in item["Label"]:
        for obj in frame["objects"]:
            box = ltwh_box(obj["bbox"], "t")
            tracks.setdefault(obj["featureId"], {})[frame["frameNumber"]] = box
            if obj["keyframe"]:
                keys.setdefault(obj["featureId"], {})[frame["frameNumber"]] = box
    checked = 0
    for fid, frames in tracks.items():
        anchors = sorted(keys[fid].items())
        for n, box in frames.items():
            if n not in keys[fid]:
                assert box_at(anchors, n) == pytest.approx(box, abs=1.5e-3), (fid, n)
                checked += 1
    assert checked == 23  # counted by hand from the fixture's keyframe:false entries


@st.composite
def segments_with_anchors(draw):
    start = draw(st.integers(1, 50))
    end = draw(st.integers(start, start + 40))
    frames = sorted(draw(st.sets(st.integers(start, end), min_size=1, max_size=6)))
    coord = st.floats(0, 500, allow_nan=False)
    anchors = []
    for f in frames:
        x0, y0 = draw(coord), draw(coord)
        anchors.append((f, (x0, y0, x0 + draw(st.floats(1, 300)), y0 + draw(st.floats(1, 300)))))
    return start, end, anchors


@settings(max_examples=150, deadline=None)
@given(segments_with_anchors())
def test_union_equals_union_over_every_frame(case):
    start, end, anchors = case
    every = [box_at(anchors, f) for f in range(start, end + 1)]
    brute = (min(b[0] for b in every), min(b[1] for b in every), max(b[2] for b in every), max(b[3] for b in every))
    assert union_box(anchors, start, end) == pytest.approx(brute)
    for f, box in anchors:  # the anchors themselves are reproduced exactly
        assert box_at(anchors, f) == box


def test_clip_box():
    assert clip_box((-4.0, 40.0, 16.0, 56.0), 64, 48) == ((0.0, 40.0, 16.0, 48.0), True)
    assert clip_box((1.0, 2.0, 3.0, 4.0), 64, 48) == ((1.0, 2.0, 3.0, 4.0), False)


# --------------------------------------------------------------------------------------------------------------------
# Classifications


def test_facts_v2_shapes_nested():
    cls = [
        {"feature_id": "q1", "name": "Category", "value": "category",
         "radio_answer": {"feature_id": "a1", "name": "Object Splitting", "value": "object_splitting",
                          "classifications": [{"name": "Explanation", "text_answer": {"content": "It splits."}}]}},
        {"name": "tags", "checklist_answers": [{"name": "Sudden Blurring"}, {"value": "object_merging"}]},
    ]
    facts = [(f.kind, f.value, "category" in f.keys) for f in classification_facts(cls)]
    assert facts == [("choice", "Object Splitting", True), ("text", "It splits.", False),
                     ("choice", "Sudden Blurring", False), ("choice", "object_merging", False)]


def test_facts_v1_shapes():
    cls = [
        {"title": "category", "answer": {"title": "Object Distortion", "value": "object_distortion"}},
        {"title": "explanation", "answer": "Melts."},
        [{"title": "tags", "answers": [{"title": "Redundant Object"}]}],  # checklist wrapped in an extra list
    ]
    assert [(f.kind, f.value) for f in classification_facts(cls)] == [
        ("choice", "Object Distortion"), ("text", "Melts."), ("choice", "Redundant Object")]
