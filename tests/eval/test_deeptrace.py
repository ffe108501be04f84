"""eval/deeptrace.py: the scorer's per-sample step (`score_response`) and what `score.py` reports about parsing —
a model is scored against what its training answer said, times in frames, refusals, boxes outside the frame."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from converters.dataset_writer import Trace, Video, build_samples
from eval import score
from eval.deeptrace import FRAMES_WITHOUT_FPS, OUTSIDE, read_reference, score_response
from prompts import deeptrace as D
from prompts.deeptrace import answer_box, fake_answer
from tests.support.eval_samples import prediction, reference, write


def _ref(box, start=1.0, fmt="pixels", width=1280, height=720, **kw):
    return read_reference(reference("v", "fake", bbox=box, start=start, width=width, height=height,
                                    answer_format=fmt, explanation="Odd hand.", **kw), "refs.jsonl:1")


def test_an_output_identical_to_its_reference_answer_scores_100_with_fractional_boxes():
    # the source box has fractions; the answer (and so the model) says whole pixels: 10.5 -> 11, 20.5 -> 21
    record = reference("v", "fake", bbox=[10.5, 10.5, 20.5, 20.5], start=1.25, explanation="x", width=64, height=48)
    answer = record["messages"][-1]["content"]
    assert "[11, 11, 21, 21] starting 1.3 seconds" in answer
    row = score_response(answer, read_reference(record, "refs.jsonl:1"))
    assert (row.correct, row.iou, row.dist, row.tdist) == (1.0, 1.0, 0.0, 0.0)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, 0.5, 1.5, 10.5, 63.5, 64.0]), st.floats(0, 64)), min_size=2,
                max_size=2),
       st.lists(st.floats(0, 48), min_size=2, max_size=2),
       st.one_of(st.sampled_from([0.05, 0.25, 0.35]), st.floats(0, 4.9)), st.sampled_from(list(D.BOX_FORMATS)),
       st.sampled_from(["full", "no_time"]))
def test_identical_outputs_score_perfectly_in_every_convention(xs, ys, start, fmt, variant):
    box = [min(xs), min(ys), max(xs), max(ys)]
    record = reference("v", "fake", bbox=box, start=start, explanation="x", width=64, height=48, answer_format=fmt,
                       variant=variant)
    ref = read_reference(record, "refs.jsonl:1")
    row = score_response(record["messages"][-1]["content"], ref)
    said = D.quantize_box(answer_box(box, fmt, 64, 48), fmt)
    if said[2] > said[0] and said[3] > said[1]:  # a box that rounds to no area scores IoU 0 either way
        assert row.iou == 1.0
    assert row.dist == 0.0 and row.correct == 1.0
    if variant == "full":
        assert row.tdist == 0.0 and ref.truth.start == D.quantize(start, 1)
    else:  # no onset in the answer: the annotation's own
        assert ref.truth.start == start


def test_a_reference_answer_that_disagrees_with_meta_is_refused():
    record = reference("v", "fake", bbox=[100, 50, 300, 250], start=1.0, width=1000, height=500)
    record["meta"]["answer_bbox_format"] = "norm1000"  # but the answer is written in pixels
    with pytest.raises(UserError, match="refs.jsonl:1: the reference answer's box .* is not meta.bbox rounded"):
        read_reference(record, "refs.jsonl:1")
    record = reference("v", "fake", bbox=[100, 50, 300, 250], start=1.0)
    record["meta"]["start"] = 2.0
    with pytest.raises(UserError, match="onset 1 s is not meta.start 2"):
        read_reference(record, "refs.jsonl:1")
    record = reference("v", "fake", bbox=[100, 50, 300, 250], start=1.0, answer_format="pixels")
    record["meta"]["answer_bbox_format"] = "abs"  # what earlier converters wrote: read as pixels
    assert read_reference(record, "refs.jsonl:1").answer_format.name == "pixels"
    record["meta"]["answer_bbox_format"] = "0-1000"
    with pytest.raises(UserError, match="unknown meta.answer_bbox_format '0-1000'"):
        read_reference(record, "refs.jsonl:1")


def test_a_time_in_frames_is_converted_with_the_reference_fps_or_missing():
    ref = _ref([0, 0, 640, 720], start=1.0)  # meta.fps 24
    row = score_response("FAKE [0, 0, 640, 720] starting at frame 36", ref)
    assert row.guess.start == 1.5 and row.tdist == pytest.approx(0.5 / 5.0)
    assert FRAMES_WITHOUT_FPS not in row.issues
    record = reference("v", "fake", bbox=[0, 0, 640, 720], start=1.0)
    record["meta"]["fps"] = None
    row = score_response("FAKE [0, 0, 640, 720] starting at frame 36", read_reference(record, "refs.jsonl:1"))
    assert row.guess.start is None and row.tdist == 1.0 and FRAMES_WITHOUT_FPS in row.issues
    # never 36 seconds
    assert score_response("FAKE [0, 0, 640, 720] starting 36 frames in", ref).guess.start == 1.5


@pytest.mark.parametrize("response", [
    "Sorry, I can't determine if this video is AI-generated.",
    "I cannot determine whether it's real",
    "I'm not convinced that this video is real.",
    "<think>The hand looks FAKE but",
])
def test_refusals_and_hedges_score_as_unparseable(response):
    for ref in (_ref([0, 0, 640, 720]), read_reference(reference("r", "real"), "refs.jsonl:2")):
        row = score_response(response, ref)
        assert row.guess.label is None and row.correct == 0.0 and row.issues


def test_box_outside_the_frame(capsys, tmp_path):
    refs = [reference(f"v{i}", "fake", bbox=[100, 100, 400, 300], start=1.0, explanation="x") for i in range(20)]
    # a zero-shot model answering on a 0-1000 grid: the lower boxes go past 720 px read as pixels
    responses = [fake_answer([100, 100 + 30 * i, 400, 300 + 30 * i], 1.0, "x") for i in range(20)]
    preds = [prediction(r, t) for r, t in zip(refs, responses, strict=True)]
    ref_path, pred_path = write(tmp_path / "refs.jsonl", refs), write(tmp_path / "preds.jsonl", preds)
    args = ["--predictions", str(pred_path), "--references", str(ref_path), "--no-judge", "--bootstrap", "0",
            "--out", str(tmp_path / "m.json")]
    assert score.main(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    outside = sum(300 + 30 * i > 720 for i in range(20))
    warning = (f"{outside} of 20 predicted boxes ({100 * outside // 20}%) fall outside the frame read as pixels; read "
               f"as norm1000, 20 fit: if the model answers in that convention, score with --bbox-format norm1000")
    assert err == [f"score.py: warning: {warning}"]
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["parse"]["issues"][OUTSIDE] == outside
    assert result["parse"]["boxes"] == {"boxes": 20, "outside_frame": outside,
                                        "fit_frame": {"pixels": 20 - outside, "norm1000": 20, "norm1": 0}}
    assert result["warnings"] == [warning]
    assert score.main([*args, "--bbox-format", "norm1000"]) == 0
    assert capsys.readouterr().err == ""
    parse = json.loads((tmp_path / "m.json").read_text())["parse"]
    assert OUTSIDE not in parse["issues"] and parse["boxes"] == {"boxes": 20, "outside_frame": 0, "fit_frame": None}


def test_parse_issues_and_notes_are_counted_in_metrics_json(tmp_path):
    refs = [reference("a", "fake", bbox=[0, 0, 640, 360], start=1.0, explanation="x"),
            reference("b", "fake", bbox=[0, 0, 640, 360], start=1.0, explanation="x"),
            reference("r", "real"), reference("s", "real")]
    responses = ["<think>REAL? no</think>" + refs[0]["messages"][-1]["content"],
                 "FAKE [0, 0, 640, 360] starting at frame 24",
                 "Sorry, I can't determine if this video is AI-generated.",
                 "I'm not convinced that this video is real."]
    preds = [prediction(r, t) for r, t in zip(refs, responses, strict=True)]
    ref_path, pred_path = write(tmp_path / "refs.jsonl", refs), write(tmp_path / "preds.jsonl", preds)
    assert score.main(["--predictions", str(pred_path), "--references", str(ref_path), "--no-judge",
                       "--bootstrap", "0", "--out", str(tmp_path / "m.json")]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["parse"]["issues"] == {D.REFUSAL: 1, D.NEGATED: 1, D.NO_EXPLANATION: 1}
    assert result["parse"]["notes"] == {"reasoning set aside": 1, D.FRAMES: 1}
    assert result["parse"]["unparseable_lines"] == [3, 4]
    assert result["metrics"]["time_distance"] == 0.0  # frame 24 at 24 fps is the 1.0 s onset
    assert result["metrics"]["real_accuracy"] == 0.0 and result["counts"]["unparseable"] == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1280), min_size=2, max_size=2, unique=True),
       st.lists(st.floats(0, 720), min_size=2, max_size=2, unique=True),
       st.floats(0, 9.9), st.sampled_from(list(D.BOX_FORMATS)), st.sampled_from(D.VARIANTS))
def test_the_converters_samples_score_perfectly_against_themselves(xs, ys, start, fmt, variant):
    """What converters/dataset_writer.py writes (meta rounded to 3 decimals, the answer by the codec) is read back by
    the scorer as the same truth: its own answer scores IoU 100 and time distance 0."""
    box = (min(xs), min(ys), max(xs), max(ys))
    video = Video("v", "fake", "/v.mp4", 1280, 720, 24.0, 10.0, traces=[Trace(box, start, None, "Odd.", [])])
    (record,) = build_samples(video, video.traces[0], [variant], fmt, "test")
    ref = read_reference(record, "refs.jsonl:1")
    row = score_response(record["messages"][-1]["content"], ref)
    said = D.quantize_box(answer_box(box, fmt, 1280, 720), fmt)
    assert row.iou == (1.0 if said[2] > said[0] and said[3] > said[1] else 0.0) and row.dist == 0.0
    assert row.tdist == (0.0 if variant in D.TIMED else 1.0)
