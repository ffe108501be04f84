"""DeeptraceReward metrics: hand-computed values, worst-case fill-ins, the paper's Table 2 arithmetic, per-video
protocol, breakdowns and the bootstrap."""

from __future__ import annotations

import math

import pytest

from eval import metrics as M
from eval.metrics import Guess, Row, Truth

FAKE_TRUTH = Truth("fake", box=(0.25, 0.25, 0.75, 0.75), start=1.0, end=3.0, duration=5.0, explanation="x")


def test_box_iou_by_hand():
    assert M.box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert M.box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert M.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert M.box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == 0.5
    assert M.box_iou((0.5, 0.5, 0.1, 0.1), (0, 0, 1, 1)) == 0.0  # x1 < x0: no area, no credit


def test_centre_distance_by_hand():
    # centres (0.25, 0.25) and (0.75, 0.75): sqrt(0.5) / sqrt(2) = 0.5
    assert M.centre_distance((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)) == pytest.approx(0.5)
    # opposite corners of the frame: the maximum, 1
    assert M.centre_distance((0, 0, 0, 0), (1, 1, 1, 1)) == pytest.approx(1.0)
    # centre (0.3, 0.5) vs (0.6, 0.9): 0.5 / sqrt(2)
    assert M.centre_distance((0.2, 0.4, 0.4, 0.6), (0.5, 0.8, 0.7, 1.0)) == pytest.approx(0.5 / math.sqrt(2))
    # a centre far outside the frame is capped at the missing-box value, except in --compat
    assert M.centre_distance((3, 3, 5, 5), (0, 0, 1, 1)) == 1.0
    far = M.centre_distance((3, 3, 5, 5), (0, 0, 1, 1), cap=False)
    assert far == pytest.approx(math.hypot(3.5, 3.5) / math.sqrt(2))


def test_time_distance_and_temporal_iou_by_hand():
    assert M.time_distance(1.0, 2.5, 5.0) == pytest.approx(0.3)
    assert M.time_distance(2.5, 1.0, 5.0) == pytest.approx(0.3)
    assert M.time_distance(0.0, 9.0, 5.0) == 1.0  # capped
    assert M.temporal_iou(1, 3, 2, 4) == pytest.approx(1 / 3)
    assert M.temporal_iou(1, 2, 3, 4) == 0.0
    assert M.temporal_iou(2, 2, 1, 3) == 0.0  # empty prediction
    assert M.temporal_iou(1, 3, 1, 3) == 1.0


def test_overall_reproduces_table_2():
    assert round(M.overall(90.7, 40.9, 10.4, 100.0), 1) == 35.5  # GPT-5
    assert round(M.overall(99.4, 70.6, 32.6, 21.9), 1) == 70.2  # VideoLLaMA3, ours full
    assert round(M.overall(74.7, 33.3, 1.7, 56.2), 1) == 38.4  # Qwen 2.5 VL 7B, ours full
    assert M.overall(90.0, None, 10.0, 5.0) is None


def test_table_2_accuracy_is_sample_weighted():
    # VideoLLaMA3 row: 437/440 fake and 330/332 real correct give Fake 99.3, Real 99.4 and Acc 99.4
    rows = [Row("fake", 1.0 if i < 437 else 0.0, iou=0, dist=1, tdist=1) for i in range(440)]
    rows += [Row("real", 1.0 if i < 330 else 0.0) for i in range(332)]
    m = M.aggregate(rows)
    assert (round(m["fake_accuracy"], 1), round(m["real_accuracy"], 1), round(m["accuracy"], 1)) == (99.3, 99.4, 99.4)


def test_perfect_prediction():
    row = M.score_sample(FAKE_TRUTH, Guess("fake", FAKE_TRUTH.box, 1.0, 3.0, "x"))
    assert (row.correct, row.iou, row.dist, row.tdist, row.tiou) == (1.0, 1.0, 0.0, 0.0, 1.0)


def test_worst_case_fill_ins():
    # predicted REAL on a fake sample: no box, no time, no explanation
    row = M.score_sample(FAKE_TRUTH, Guess("real", (0.25, 0.25, 0.75, 0.75), 1.0, 3.0, "x"))
    assert (row.correct, row.iou, row.dist, row.tdist, row.tiou) == (0.0, 0.0, 1.0, 1.0, 0.0)
    # unparseable verdict: wrong, and its localisation is not used
    row = M.score_sample(FAKE_TRUTH, Guess(None, (0.25, 0.25, 0.75, 0.75), 1.0))
    assert (row.correct, row.iou, row.dist, row.tdist) == (0.0, 0.0, 1.0, 1.0)
    # FAKE without box / time / end
    row = M.score_sample(FAKE_TRUTH, Guess("fake"))
    assert (row.correct, row.iou, row.dist, row.tdist, row.tiou) == (1.0, 0.0, 1.0, 1.0, 0.0)
    # a start but no end: time distance counts, temporal IoU is 0
    row = M.score_sample(FAKE_TRUTH, Guess("fake", None, 1.5))
    assert (row.tdist, row.tiou) == (pytest.approx(0.1), 0.0)
    # truth without an end: no temporal IoU at all
    row = M.score_sample(Truth("fake", box=(0, 0, 1, 1), start=0, duration=1), Guess("fake", None, 0.0, 1.0))
    assert row.tiou is None
    # real samples: only the verdict counts
    assert M.score_sample(Truth("real"), Guess("real")) == Row("real", 1.0)
    assert M.score_sample(Truth("real"), Guess("fake", (0, 0, 1, 1), 1.0)) == Row("real", 0.0)
    assert M.score_sample(Truth("real"), Guess(None)) == Row("real", 0.0)


def test_aggregate_by_hand():
    rows = [
        Row("fake", 1.0, iou=0.5, dist=0.2, tdist=0.1, tiou=0.4, expl=1.0),
        Row("fake", 1.0, iou=0.3, dist=0.4, tdist=0.3, tiou=None, expl=0.5),
        Row("fake", 0.0, iou=0.0, dist=1.0, tdist=1.0, tiou=0.0, expl=None),  # no true explanation: excluded
        Row("fake", 0.0, iou=0.0, dist=1.0, tdist=1.0, tiou=0.0, expl=0.0),
        Row("real", 1.0),
        Row("real", 0.0),
    ]
    m = M.aggregate(rows)
    assert m["accuracy"] == pytest.approx(100 * 3 / 6)
    assert m["fake_accuracy"] == pytest.approx(50.0)
    assert m["real_accuracy"] == pytest.approx(50.0)
    assert m["explanation"] == pytest.approx(100 * 1.5 / 3)
    assert m["bbox_iou"] == pytest.approx(100 * 0.8 / 4)
    assert m["bbox_distance"] == pytest.approx(100 * 2.6 / 4)
    assert m["time_distance"] == pytest.approx(100 * 2.4 / 4)
    assert m["time_iou"] == pytest.approx(100 * 0.4 / 3)
    assert m["overall"] == pytest.approx((50 + 50 + 20 + (100 - 60)) / 4)
    assert list(m) == list(M.METRIC_KEYS)
    assert M.aggregate(rows, time_iou=False)["time_iou"] is None
    # no explanation scores at all (--no-judge): explanation and overall are None
    bare = M.aggregate([Row("fake", 1.0, iou=1, dist=0, tdist=0), Row("real", 1.0)])
    assert bare["explanation"] is None and bare["overall"] is None and bare["accuracy"] == 100.0


def test_collapse_groups_weights_each_video_once():
    rows = [Row("fake", 1.0, iou=1.0, dist=0.0, tdist=0.0, expl=1.0, group="a"),
            Row("fake", 0.0, iou=0.0, dist=1.0, tdist=1.0, expl=None, group="a"),
            Row("fake", 1.0, iou=0.5, dist=0.5, tdist=0.5, expl=0.0, group="b"),
            Row("real", 1.0, group="r")]
    video = M.collapse_groups(rows)
    assert len(video) == 3
    m = M.aggregate(video)
    assert m["fake_accuracy"] == pytest.approx(100 * (0.5 + 1.0) / 2)
    assert m["bbox_iou"] == pytest.approx(100 * (0.5 + 0.5) / 2)
    assert m["explanation"] == pytest.approx(100 * (1.0 + 0.0) / 2)


def test_match_key_prefers_overlap_then_centre_then_time_then_own_trace():
    a = Row("fake", 1, iou=0.5, dist=0.3, tdist=0.9)
    b = Row("fake", 1, iou=0.2, dist=0.0, tdist=0.0)
    assert min([(a, 1), (b, 0)], key=lambda x: M.match_key(x[0], own=False, order=x[1]))[0] is a
    c = Row("fake", 1, iou=0.0, dist=0.4, tdist=0.0)
    d = Row("fake", 1, iou=0.0, dist=0.2, tdist=0.9)
    assert min([(c, 0), (d, 1)], key=lambda x: M.match_key(x[0], own=False, order=x[1]))[0] is d
    e = Row("fake", 1, iou=0.0, dist=1.0, tdist=1.0)
    assert M.match_key(e, own=True, order=5) < M.match_key(e, own=False, order=0)


def test_breakdown_multi_label():
    rows = [Row("fake", 1.0, iou=1.0, dist=0, tdist=0, categories=("a", "b")),
            Row("fake", 0.0, iou=0.0, dist=1, tdist=1, categories=("b",))]
    table = M.breakdown(rows, lambda r: r.categories)
    assert table["a"]["counts"]["n"] == 1 and table["a"]["metrics"]["bbox_iou"] == 100.0
    assert table["b"]["counts"]["n"] == 2 and table["b"]["metrics"]["bbox_iou"] == 50.0


def _rows(n_fake=40, n_real=30):
    rows = [Row("fake", float(i % 3 != 0), iou=(i % 5) / 5, dist=(i % 4) / 4, tdist=(i % 7) / 7,
                expl=[0.0, 0.5, 1.0][i % 3] if i % 2 else None, group=f"f{i // 2}") for i in range(n_fake)]
    rows += [Row("real", float(i % 5 != 0), group=f"r{i}") for i in range(n_real)]
    return rows


def test_bootstrap_ci_contains_the_estimate_and_is_reproducible():
    rows = _rows()
    point = M.aggregate(rows)
    ci = M.bootstrap_ci(rows, 500, seed=3)
    for key in ("overall", "accuracy", "fake_accuracy", "real_accuracy", "explanation", "bbox_iou", "bbox_distance",
                "time_distance"):
        lo, hi = ci[key]
        assert lo <= point[key] <= hi and lo < hi, key
    assert ci == M.bootstrap_ci(rows, 500, seed=3)
    assert ci != M.bootstrap_ci(rows, 500, seed=4)
    assert ci["time_iou"] is None  # no temporal IoU values
    assert M.bootstrap_ci(rows, 0) == {}


def test_bootstrap_keeps_strata_and_clusters():
    # all fakes right, all reals wrong: any replicate that kept the composition has accuracy exactly 40/70
    rows = [Row("fake", 1.0, iou=1, dist=0, tdist=0, group=f"f{i}") for i in range(40)]
    rows += [Row("real", 0.0, group=f"r{i}") for i in range(30)]
    ci = M.bootstrap_ci(rows, 200, seed=0)
    assert ci["accuracy"] == [pytest.approx(400 / 7), pytest.approx(400 / 7)]
    # one video with two traces: resampled together, so its two values always come as a pair
    rows = [Row("fake", 1.0, iou=1.0, dist=0, tdist=0, group="v"),
            Row("fake", 1.0, iou=0.0, dist=0, tdist=0, group="v")]
    assert M.bootstrap_ci(rows, 100, seed=0)["bbox_iou"] == [pytest.approx(50.0), pytest.approx(50.0)]
