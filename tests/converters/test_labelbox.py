"""converters/labelbox_to_swift.py on real LabelBox-shaped exports (tests/fixtures/labelbox) and real mp4 files.

Expected boxes and times are worked out by hand from the fixtures (see the comments in
tests/fixtures/labelbox/make_synthetic.py and tests/fixtures/labelbox/README.md): box = [left, top, left + width,
top + height] in pixels, start = (first frame - 1) / fps, end = last frame / fps.
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
from converters.labelbox_to_swift import main
from prompts import deeptrace as prompts
from tests.support.cli import run_main
from tests.support.media import write_mp4

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "labelbox"
CLI = ROOT / "converters" / "labelbox_to_swift.py"
SAMPLES = ROOT / "samples" / "deeptrace"
FIXTURE_VIDEOS = ["multi_object.mp4", "consensus.mp4", "frame_ranged.mp4", "no_labels.mp4", "all_skipped.mp4",
                  "blank_explanation.mp4", "no_segments.mp4", "clipped.mp4", "proj_both.mp4", "proj_b_only.mp4",
                  "proj_none.mp4", "sdk_sample_video.mp4", "jellyfish2-100-110.mp4"]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    for i, name in enumerate(FIXTURE_VIDEOS):
        write_mp4(d / name, i)
    return d


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("real")
    write_mp4(d / "r1.mp4", 21, width=64, height=48, fps=4, frames=8)
    write_mp4(d / "sub" / "r2.mp4", 22, width=32, height=24, fps=8, frames=12)
    write_mp4(d / "r3.mp4", 23, width=48, height=32, fps=5, frames=10)
    return d


def convert(export: Path, out: Path, media: Path | None, *extra: str) -> tuple[dict[str, list[dict]], dict]:
    argv = [str(export), "--out", str(out), "-q", *extra]
    if media is not None:
        argv += ["--media-root", str(media)]
    assert main(argv) == 0
    return read_out(out), json.loads((out / "stats.json").read_text())


def read_out(out: Path) -> dict[str, list[dict]]:
    return {s: [json.loads(line) for line in (out / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "val", "test")}


def all_rows(rows: dict[str, list[dict]]) -> list[dict]:
    return rows["train"] + rows["val"] + rows["test"]


def by_trace(rows: dict[str, list[dict]]) -> dict[str, dict]:
    return {r["meta"]["trace_id"]: r["meta"] for r in all_rows(rows) if r["meta"]["label"] == "fake"}


# --------------------------------------------------------------------------------------------------------------------
# Export v2


def test_sdk_v2_capture(tmp_path, media):
    """The 2023 SDK capture: one object, segments [13, 13] and [18, 19], keyframes 13/18/19, dict-shaped map, a
    nested radio at 13 and 18 only; 640x360 at 10 fps."""
    rows, stats = convert(FIX / "v2_sdk_video_label.ndjson", tmp_path / "out", media, "--split", "1:0:0")
    assert [len(rows[s]) for s in ("train", "val", "test")] == [2, 0, 0]
    first, second = rows["train"]
    assert first["meta"]["bbox"] == [146, 98, 382, 341]
    assert (first["meta"]["start"], first["meta"]["end"]) == (1.2, 1.3)
    assert second["meta"]["bbox"] == [146, 98, 382, 341]
    assert (second["meta"]["start"], second["meta"]["end"]) == (1.7, 1.9)
    for r in (first, second):
        assert r["meta"]["categories"] == ["radio_option_1"]
        assert r["meta"]["explanation"] is None
        assert (r["meta"]["width"], r["meta"]["height"], r["meta"]["fps"], r["meta"]["duration"]) == (640, 360, 10, 10)
        assert r["messages"][0] == {"role": "user", "content": prompts.question("full")}
        assert r["videos"] == [str((media / "sdk_sample_video.mp4").resolve())]
        assert r["meta"]["video_id"] == "sdk_sample_video.mp4"
        assert r["meta"]["project_id"] == "clgjnpy2h000ai3zx1w7g3tbp"
    assert first["messages"][1]["content"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [146, 98, 382, 341] starting 1.2 seconds.")
    assert stats["input_format"] == "labelbox-export-v2-ndjson"
    assert stats["total"]["fake_samples"] == 2 and stats["total"]["fake_videos"] == 1


def test_v2_json_list_and_single_object(tmp_path, media):
    """`json.dump(export_v2().result)` (a JSON list) and one pretty-printed row read like the NDJSON."""
    row = json.loads((FIX / "v2_sdk_video_label.ndjson").read_text())
    (tmp_path / "list.json").write_text(json.dumps([row], indent=2))
    (tmp_path / "one.json").write_text(json.dumps(row, indent=2))
    ref, _ = convert(FIX / "v2_sdk_video_label.ndjson", tmp_path / "ref", media)
    for name in ("list.json", "one.json"):
        rows, stats = convert(tmp_path / name, tmp_path / name.replace(".", "_"), media)
        assert rows == ref and stats["input_format"] == "labelbox-export-v2-json"


PITFALLS_FIRST = {  # trace id → (bbox, start, end, categories, explanation), by hand from make_synthetic.py
    "clpitobj00000000000000a01": ([0, 0, 10, 10], 0.0, 2.25, ["Object Distortion"], "The left hand has six fingers."),
    "clpitobj00000000000000a02#0": ([30, 20, 40, 28], 0.25, 0.75, ["Object Splitting"], "The cup splits in two."),
    "clpitobj00000000000000a02#1": ([50, 30, 60, 38], 1.5, 2.0, ["Object Merging"], "The cup splits in two."),
    "clpitobj00000000000000b02": ([10, 10, 20, 20], 0.5, 1.0, [], None),
    "clpitobj00000000000000c01": ([5, 5, 15, 15], 0.25, 0.75, ["Sudden Blurring"], "Global: the whole clip flickers."),
    "clpitobj00000000000000c02": ([30, 20, 40, 30], 1.5, 2.5, [], "The shadow detaches from the cyclist."),
    "clpitobj00000000000000f01": ([40, 4, 48, 10], 0.0, 0.5, [], None),
    "clpitobj00000000000000g01": ([0, 0, 8, 8], 0.25, 1.5, [], None),
    "clpitobj00000000000000h01": ([0, 40, 16, 48], 0.0, 0.25, [], None),
}


def test_pitfalls_first_box(tmp_path, media):
    rows, stats = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "out", media)
    got = {tid: (m["bbox"], m["start"], m["end"], m["categories"], m["explanation"])
           for tid, m in by_trace(rows).items()}
    assert got == PITFALLS_FIRST
    assert stats["skipped"]["rows_without_labels"] == 1  # D
    assert stats["skipped"]["skipped_labels"] == 2  # B's first label, E's only label
    assert stats["skipped"]["rows_with_only_skipped_labels"] == 1  # E
    assert stats["skipped"]["labels_not_first"] == 1  # B's benchmark label
    assert stats["adjusted"]["boxes_clipped"] == 1  # H
    assert stats["adjusted"]["segments_inferred_first_to_last_frame"] == 1  # G
    assert stats["total"] == {"samples": 9, "fake_samples": 9, "real_samples": 0, "fake_videos": 6, "real_videos": 0,
                              "with_explanation": 5, "with_categories": 4}
    assert stats["categories"]["total"] == {"Object Distortion": 1, "Object Splitting": 1, "Object Merging": 1,
                                            "Sudden Blurring": 1}
    # the answer of a trace without explanation has no reason sentence; one with it ends with the explanation
    answers = {r["meta"]["trace_id"]: r["messages"][1]["content"] for r in all_rows(rows)}
    assert answers["clpitobj00000000000000h01"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [0, 40, 16, 48] starting 0.0 seconds.")
    assert answers["clpitobj00000000000000a01"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [0, 0, 10, 10] starting 0.0 seconds. "
        "The reason is because The left hand has six fingers.")


def test_pitfalls_union_box(tmp_path, media):
    rows, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "out", media, "--bbox-mode", "union")
    got = {tid: m["bbox"] for tid, m in by_trace(rows).items()}
    assert got["clpitobj00000000000000a01"] == [0, 0, 40, 30]  # keyframes 1, 5, 9
    assert got["clpitobj00000000000000a02#0"] == [30, 20, 42, 28]  # never bridged across the gap 4-6 ...
    assert got["clpitobj00000000000000a02#1"] == [50, 30, 62, 38]  # ... to the other segment
    assert got["clpitobj00000000000000g01"] == [0, 0, 16, 8]
    assert got["clpitobj00000000000000b02"] == [10, 10, 20, 20]  # one keyframe: held over [3, 4]
    assert got["clpitobj00000000000000c02"] == [30, 20, 40, 30]


def test_label_modes(tmp_path, media):
    def consensus(mode: str) -> list[tuple[str, list]]:
        rows, stats = convert(FIX / "v2_pitfalls.ndjson", tmp_path / mode, media, "--labels", mode)
        return sorted((m["label_id"], m["bbox"]) for m in by_trace(rows).values()
                      if m["video_id"] == "consensus.mp4"), stats

    first, _ = consensus("first")
    assert first == [("clpitlabel0000000000b0002", [10, 10, 20, 20])]
    every, stats = consensus("all")
    assert every == [("clpitlabel0000000000b0002", [10, 10, 20, 20]), ("clpitlabel0000000000b0003", [12, 12, 22, 22])]
    assert stats["skipped"]["labels_not_first"] == 0
    bench, stats = consensus("benchmark")
    assert bench == [("clpitlabel0000000000b0003", [12, 12, 22, 22])]
    assert stats["skipped"]["labels_not_benchmark"] == 1
    # the skipped label's box [1, 1, 6, 6] never appears, whatever the mode
    assert all([1, 1, 6, 6] not in (b for _, b in mode) for mode in (first, every, bench))


def test_feature_name_filters(tmp_path, media):
    rows, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "a", media, "--category-feature", "Quality")
    cats = {tid: m["categories"] for tid, m in by_trace(rows).items()}
    assert cats["clpitobj00000000000000c01"] == ["good"]  # a named feature counts even as a global classification
    assert cats["clpitobj00000000000000c02"] == ["good"]
    assert cats["clpitobj00000000000000a01"] == []  # "Category" is not "Quality"
    rows, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "b", media, "--explanation-feature", "explanation")
    assert {t: m["explanation"] for t, m in by_trace(rows).items()} == {t: v[4] for t, v in PITFALLS_FIRST.items()}
    rows, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "c", media, "--explanation-feature", "no_such_question")
    assert all(m["explanation"] is None for m in by_trace(rows).values())


def test_several_projects(tmp_path, media):
    export = FIX / "v2_two_projects.ndjson"
    with pytest.raises(UserError) as err:
        convert(export, tmp_path / "x", media)
    assert "--project-id" in str(err.value)
    assert "clpitprojA000000000000001 (1 rows)" in str(err.value)
    assert "clpitprojB000000000000002 (2 rows)" in str(err.value)
    assert not (tmp_path / "x").exists()

    rows, stats = convert(export, tmp_path / "a", media, "--project-id", "clpitprojA000000000000001")
    assert [(m["video_id"], m["bbox"], m["start"], m["end"]) for m in by_trace(rows).values()] == [
        ("proj_both.mp4", [1, 1, 5, 5], 0.0, 0.5)]
    assert stats["skipped"]["rows_not_in_project"] == 1 and stats["skipped"]["rows_without_labels"] == 1
    assert stats["project_id"] == "clpitprojA000000000000001"

    rows, _ = convert(export, tmp_path / "b", media, "--project-id", "clpitprojB000000000000002")
    assert sorted((m["video_id"], m["bbox"], m["start"]) for m in by_trace(rows).values()) == [
        ("proj_b_only.mp4", [6, 6, 10, 10], 0.0), ("proj_both.mp4", [2, 2, 6, 6], 0.5)]

    with pytest.raises(UserError, match="project id nope is not in this export; projects found: clpitprojB"):
        convert(export, tmp_path / "c", media, "--project-id", "nope")


# --------------------------------------------------------------------------------------------------------------------
# Export v1


def test_v1_frames_inlined_sdk_fixture(tmp_path, media):
    """The SDK's v1 fixture (frames inlined, every frame materialised, 7 jellyfish tracks), 1920x1080 at 10 fps."""
    rows, stats = convert(FIX / "v1_frames_inlined.json", tmp_path / "out", media, "--split", "1:0:0")
    traces = by_trace(rows)
    assert len(traces) == 7
    assert stats["input_format"] == "labelbox-export-v1"
    expect = {  # first-frame boxes read from the fixture
        "ckqcx1d9x06em0y618b90atyy": ([1644, 582, 1856, 922], 0.0, 10.0),  # frames 1-100
        "ckqcx1d9x06eo0y6188xz7m35": ([155, 47, 485, 428], 0.0, 4.0),  # frames 1-40
        "ckqcx1d9x06er0y612emohrkf": ([569, 321, 678, 446], 4.0, 7.9),  # frames 41-79
        "ckqcx1d9x06es0y61gvx60aqk": ([1352, 338, 1569, 540], 7.9, 10.0),  # frames 80-100
    }
    for tid, (bbox, start, end) in expect.items():
        assert (traces[tid]["bbox"], traces[tid]["start"], traces[tid]["end"]) == (bbox, start, end)
    assert all(m["video_id"] == "ckqcx1d6f06c70y61dcap7u95" for m in traces.values())  # no Global Key: DataRow ID

    rows, _ = convert(FIX / "v1_frames_inlined.json", tmp_path / "union", media, "--split", "1:0:0",
                      "--bbox-mode", "union")
    item = json.loads((FIX / "v1_frames_inlined.json").read_text())[0]
    boxes = [o["bbox"] for f in item["Label"] for o in f["objects"] if o["featureId"] == "ckqcx1d9x06er0y612emohrkf"]
    assert by_trace(rows)["ckqcx1d9x06er0y612emohrkf"]["bbox"] == [
        min(b["left"] for b in boxes), min(b["top"] for b in boxes),
        max(b["left"] + b["width"] for b in boxes), max(b["top"] + b["height"] for b in boxes)]


def test_v1_frames_file_beside_export(tmp_path, media):
    """The real 2022 v1 item (Label.frames is a URL) with its frames saved as <label id>.ndjson beside it; the real
    frame-1 line plus frames 2, 3, 5 (see tests/fixtures/labelbox/README.md), and a skipped item."""
    rows, stats = convert(FIX / "v1_frames_file" / "export.json", tmp_path / "out", media, "--split", "1:0:0")
    traces = by_trace(rows)
    c, d = "cktu4ftf43y1c0y6t7r8oc7tr", "cktu4ftf43y1d0y6t14xzhymp"
    assert traces[c]["bbox"] == [1644, 582, 1856, 922] and (traces[c]["start"], traces[c]["end"]) == (0.0, 0.3)
    assert traces[c]["categories"] == ["Object Distortion", "Sudden Blurring"]  # nested radio + frame checklist
    assert traces[c]["explanation"] == "The jellyfish bell folds in on itself."  # v1 text answer
    assert traces[f"{d}#0"]["bbox"] == [1256, 712, 1586, 916] and traces[f"{d}#0"]["end"] == 0.2
    assert traces[f"{d}#0"]["categories"] == []
    assert traces[f"{d}#1"]["bbox"] == [1240, 720, 1570, 924]
    assert (traces[f"{d}#1"]["start"], traces[f"{d}#1"]["end"]) == (0.4, 0.5)
    assert traces[f"{d}#1"]["categories"] == ["Redundant Object"]  # checklist wrapped in an extra list
    assert len(traces) == 6  # c, d twice, and three one-frame objects
    assert stats["skipped"]["skipped_labels"] == 1 and stats["skipped"]["rows_with_only_skipped_labels"] == 1
    assert traces[c]["video_id"] == "cktu4ft9q3xz30y6t3z25hymy"
    rows, _ = convert(FIX / "v1_frames_file" / "export.json", tmp_path / "u", media, "--bbox-mode", "union")
    assert by_trace(rows)[c]["bbox"] == [1630, 582, 1856, 940]


def test_v1_frames_file_not_downloaded(tmp_path, media):
    shutil.copy(FIX / "v1_frames_file" / "export.json", tmp_path / "export.json")
    with pytest.raises(UserError, match=r"label cktu4ftfi3y1k0y6t870p45ty: frames are at https://.*"
                                        r"cktu4ftfi3y1k0y6t870p45ty\.ndjson"):
        convert(tmp_path / "export.json", tmp_path / "out", media)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------------
# Output: variants, coordinate formats, real videos, media lookup, splits


def test_variants_all_layout_and_answers(tmp_path, media):
    out = tmp_path / "out"
    assert main([str(FIX / "v2_pitfalls.ndjson"), "--out", str(out), "-q", "--media-root", str(media),
                 "--variant", "all"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*prompts.VARIANTS, ".dataset-files.json"])
    for variant in prompts.VARIANTS:
        assert sorted(p.name for p in (out / variant).iterdir()) == [
            "stats.json", "test.jsonl", "train.jsonl", "val.jsonl"]
        rows = read_out(out / variant)
        assert json.loads((out / variant / "stats.json").read_text())["variant"] == variant
        for r in all_rows(rows):
            m = r["meta"]
            assert m["variant"] == variant
            assert r["messages"][0]["content"] == prompts.question(variant)
            assert r["messages"][1]["content"] == prompts.fake_answer(m["bbox"], m["start"], m["explanation"], variant)
    a01 = by_trace(read_out(out / "no_time"))["clpitobj00000000000000a01"]
    assert a01["bbox"] == [0, 0, 10, 10]


def test_bbox_formats(tmp_path, media):
    def answer(fmt: str) -> str:
        rows, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / fmt, media, "--bbox-format", fmt)
        row = next(r for r in all_rows(rows) if r["meta"].get("trace_id") == "clpitobj00000000000000a02#1")
        assert row["meta"]["bbox"] == [50, 30, 60, 38] and row["meta"]["bbox_format"] == "pixels"
        assert row["meta"]["answer_bbox_format"] == fmt
        return row["messages"][1]["content"]

    tail = " starting 1.5 seconds. The reason is because The cup splits in two."
    assert answer("pixels") == f"FAKE. The video is AI-generated. The unnatural part is at [50, 30, 60, 38]{tail}"
    # 64x48 frame: 50/64 = 0.78125, 30/48 = 0.625, 60/64 = 0.9375, 38/48 = 0.79166…
    assert answer("norm1000") == f"FAKE. The video is AI-generated. The unnatural part is at [781, 625, 938, 792]{tail}"
    assert answer("norm1") == (f"FAKE. The video is AI-generated. The unnatural part is at "
                               f"[0.781, 0.625, 0.938, 0.792]{tail}")


def test_real_videos(tmp_path, media, real_dir):
    rows, stats = convert(FIX / "v2_sdk_video_label.ndjson", tmp_path / "out", media, "--real-videos", str(real_dir),
                          "--real-source", "LLaVA-Video-178K", "--split", "1:1:1")
    reals = {r["meta"]["video_id"]: r for r in all_rows(rows) if r["meta"]["label"] == "real"}
    assert sorted(reals) == ["r1.mp4", "r3.mp4", "sub/r2.mp4"]
    r2 = reals["sub/r2.mp4"]
    assert r2["messages"][1]["content"] == prompts.REAL_ANSWER
    assert (r2["meta"]["width"], r2["meta"]["height"], r2["meta"]["fps"], r2["meta"]["duration"]) == (32, 24, 8, 1.5)
    assert (r2["meta"]["bbox"], r2["meta"]["start"], r2["meta"]["explanation"]) == (None, None, None)
    assert r2["meta"]["source"] == "LLaVA-Video-178K"
    assert r2["videos"] == [str((real_dir / "sub" / "r2.mp4").resolve())]
    assert reals["r3.mp4"]["meta"]["duration"] == 2.0
    assert stats["total"]["real_samples"] == 3 and stats["total"]["real_videos"] == 3


def test_media_lookup_by_other_ids(tmp_path):
    """Fake clips named by row_data's file name, by data row id without extension, or by external_id."""
    media = tmp_path / "m"
    write_mp4(media / "sample-video-1.mp4", 1)  # the file name in row_data of the SDK capture row
    rows, _ = convert(FIX / "v2_sdk_video_label.ndjson", tmp_path / "a", media)
    assert {r["videos"][0] for r in all_rows(rows)} == {str((media / "sample-video-1.mp4").resolve())}
    (media / "sample-video-1.mp4").rename(media / "clgjnpyr9000pi3zx9uflb0bo.mp4")  # data row id + .mp4
    rows, _ = convert(FIX / "v2_sdk_video_label.ndjson", tmp_path / "b", media)
    assert len(all_rows(rows)) == 2
    write_mp4(media / "jellyfish2-100-110.mp4", 2)  # v1 External ID
    rows, _ = convert(FIX / "v1_frames_inlined.json", tmp_path / "c", media)
    assert len(all_rows(rows)) == 7


def test_missing_media(tmp_path, media):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("multi_object.mp4", "consensus.mp4"):
        shutil.copy(media / name, partial / name)
    with pytest.raises(UserError) as err:
        convert(FIX / "v2_pitfalls.ndjson", tmp_path / "out", partial)
    msg = str(err.value)
    assert msg.startswith("4 video file(s) not found under")
    for name in ("frame_ranged.mp4", "blank_explanation.mp4", "no_segments.mp4", "clipped.mp4"):
        assert name in msg
    assert "--skip-missing" in msg
    assert not (tmp_path / "out").exists()
    rows, stats = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "out", partial, "--skip-missing")
    assert {m["video_id"] for m in by_trace(rows).values()} == {"multi_object.mp4", "consensus.mp4"}
    assert stats["skipped"]["missing_media"] == 4
    assert sorted(m["video_id"] for m in stats["missing_media"]) == [
        "blank_explanation.mp4", "clipped.mp4", "frame_ranged.mp4", "no_segments.mp4"]
    assert stats["missing_media"][0]["where"].endswith("v2_pitfalls.ndjson:3")


def test_media_attributes_missing_are_probed(tmp_path):
    """Without media_attributes, size/fps/duration come from the clip itself (64x48, 4 fps, 16 frames)."""
    lines = (SAMPLES / "export_v2.ndjson").read_text().splitlines()
    stripped = []
    for line in lines:
        row = json.loads(line)
        del row["media_attributes"]
        stripped.append(json.dumps(row))
    (tmp_path / "e.ndjson").write_text("\n".join(stripped) + "\n")
    rows, stats = convert(tmp_path / "e.ndjson", tmp_path / "out", SAMPLES / "videos")
    ref, _ = convert(SAMPLES / "export_v2.ndjson", tmp_path / "ref", SAMPLES / "videos")
    assert stats["adjusted"]["videos_probed_for_media_attributes"] == 5
    assert [r["meta"] for r in all_rows(rows)] == [r["meta"] for r in all_rows(ref)]


def test_split_by_video_is_stable_and_disjoint(tmp_path, media, real_dir):
    export = FIX / "v2_pitfalls.ndjson"
    rows, _ = convert(export, tmp_path / "all", media, "--split", "1:1:1", "--labels", "all",
                      "--real-videos", str(real_dir))
    where = {}
    for split, items in rows.items():
        for r in items:
            assert where.setdefault(r["meta"]["video_id"], split) == split  # no video in two splits
            assert r["meta"]["split"] == split
    # drop half the rows: the remaining videos keep their split
    lines = export.read_text().splitlines()
    (tmp_path / "half.ndjson").write_text("\n".join(lines[::2]) + "\n")
    half, _ = convert(tmp_path / "half.ndjson", tmp_path / "half", media, "--split", "1:1:1", "--labels", "all",
                      "--real-videos", str(real_dir))
    kept = {r["meta"]["video_id"]: s for s, items in half.items() for r in items}
    assert kept and all(where[v] == s for v, s in kept.items())
    # a different seed moves some videos; the same seed reproduces the files byte for byte
    convert(export, tmp_path / "again", media, "--split", "1:1:1", "--labels", "all", "--real-videos", str(real_dir))
    for s in ("train", "val", "test"):
        assert (tmp_path / "all" / f"{s}.jsonl").read_bytes() == (tmp_path / "again" / f"{s}.jsonl").read_bytes()


def test_rerun_into_existing_dir(tmp_path, media):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "train.jsonl").write_text("stale\n")
    convert(FIX / "v2_sdk_video_label.ndjson", out, media, "--split", "1:0:0")
    assert (out / "notes.txt").read_text() == "mine"
    assert len((out / "train.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory left behind


# --------------------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2, nothing written


def _v2_row(**media) -> dict:
    row = json.loads((FIX / "v2_sdk_video_label.ndjson").read_text())
    row["media_attributes"].update(media)
    return row


def _box(row: dict, **bbox) -> dict:
    label = next(iter(row["projects"].values()))["labels"][0]
    label["annotations"]["frames"]["13"]["objects"]["clgjnpyse000ui3zx6fr1d880"]["bounding_box"].update(bbox)
    return row


def _lines(*rows: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


BAD_INPUTS = {
    "malformed_line": (_lines(_v2_row(), "", "{not json"), [], r"bad\.ndjson:3: invalid JSON"),
    "zero_area_box": (_lines(_box(_v2_row(), width=0)), [],
                      r"bad\.ndjson:1: label clgjnpysl000xi3zxtnp29fug: frame 13 object clgjnpyse000ui3zx6fr1d880: "
                      r"zero-area bounding box \(width 0, height 243\)"),
    "zero_fps": (_lines(_v2_row(frame_rate=0)), [], r"bad\.ndjson:1: data row \w+: frame rate is 0; it must be > 0"),
    "box_outside_frame": (_lines(_box(_v2_row(), left=700.0)), [],
                          r"bad\.ndjson:1: data row \w+ label \w+: object \w+ segment \[13, 13\]: box lies outside "
                          r"the 640x360 frame"),
    "box_partly_outside_strict": (_lines(_box(_v2_row(), left=600.0)), ["--strict"], r"partly outside.*--strict"),
    "unknown_project": (_lines(_v2_row()), ["--project-id", "nope"],
                        r"project id nope is not in this export; projects found: clgjnpy2h000ai3zx1w7g3tbp \(1 rows\)"),
    "empty_export": ("", [], r"bad\.ndjson: the export is empty"),
    "empty_array": ("[]", [], r"bad\.ndjson: the export is an empty JSON array"),
    "not_an_export": ('{"foo": 1}\n', [], r"bad\.ndjson:1: not a LabelBox video export row"),
    "model_run_export": ('{"data_row": {"id": "x"}, "experiments": {}}\n', [], r"model-run export"),
    "duplicate_row": (_lines(_v2_row(), _v2_row()), [],
                      r"bad\.ndjson:2: data row \w+ \(video sdk_sample_video\.mp4\) already appeared at bad\.ndjson:1"),
    "frame_twice": (_lines(json.loads(_lines(_v2_row()).replace('"19": {', '"019": {"objects": {}}, "19": {'))), [],
                    r"bad\.ndjson:1: label \w+: frame 19 appears twice in annotations\.frames \('019', '19'\)"),
    "bad_segment": (_lines(json.loads(_lines(_v2_row()).replace("[18, 19]", "[19, 18]"))), [],
                    r"segments of object \w+: segment \[19, 18\] is not a valid"),
    "no_usable_rows": (_lines({**_v2_row(), "projects": {}}), [], r"no samples: 1 data rows"),
    "bad_split": (_lines(_v2_row()), ["--split", "8:1"], r"--split '8:1': expected three"),
    "bad_flag": (_lines(_v2_row()), ["--bbox-mode", "middle"], r"argument --bbox-mode: invalid choice"),
    "missing_media": (_lines(_v2_row()), ["--media-root", "EMPTY"],
                      r"1 video file\(s\) not found under .*EMPTY: sdk_sample_video\.mp4 \(.*bad\.ndjson:1\)"),
    # a 60-frame, 2 s clip at 30 fps with a segment at frames 500-501 (it was written with start 16.6 s)
    "trace_after_its_clip": (_lines(json.loads(_lines(_v2_row(frame_rate=30, frame_count=60, duration=2)).replace(
        "[18, 19]", "[500, 501]"))), [],
        r"bad\.ndjson:1: data row \w+ label \w+: object \w+ segment \[500, 501\] \(16\.633-16\.700 s\) starts after "
        r"its clip \(2\.000 s, 60 frames at 30 fps; one frame of tolerance\); pass --skip-invalid to leave such traces "
        r"out"),
    "trace_ends_after_its_clip": (_lines(_v2_row(frame_count=17, duration=1.75)), [],
                                  r"segment \[18, 19\] \(1\.700-1\.900 s\) ends after its clip \(1\.750 s, "
                                  r"17\.5 frames at 10 fps; one frame of tolerance\)"),
    "trace_ending_one_frame_after_its_clip": (_lines(_v2_row(frame_count=18, duration=1.8)), [],  # ends at 1.9 s
                                              r"NO ERROR"),
    "fractional_segment": (_lines(json.loads(_lines(_v2_row()).replace("[18, 19]", "[18, 19.5]"))), [],
                           r"bad\.ndjson:1: label \w+: segments of object \w+: segment \[18, 19\.5\]: frame 19\.5 "
                           r"has a fraction; frame numbers are whole \(pass --skip-invalid"),
    "fractional_frame_key": (_lines(json.loads(_lines(_v2_row()).replace('"19": {', '"19.5": {'))), [],
                             r"bad\.ndjson:1: label \w+: frame number '19\.5' has a fraction"),
    "empty_video_file": (_lines(_v2_row()), ["--media-root", "EMPTYFILE"],
                         r"bad\.ndjson:1: data row \w+: .*sdk_sample_video\.mp4 is an empty file, not a video"),
    "not_a_video": (_lines(_v2_row()), ["--media-root", "TEXTFILE"],
                    r"bad\.ndjson:1: data row \w+: .*sdk_sample_video\.mp4 is not a readable video \("),
    "not_utf8": (_lines(_v2_row()).replace("bbox", "b\udce9ox"), [],
                 r"bad\.ndjson:1: not UTF-8 text \(invalid continuation byte at byte \d+ of the line\)"),
    "out_under_a_file": (_lines(_v2_row()), ["--out", "AFILE/out"],
                         r"--out .*AFILE/out: cannot write the output folder here \(.*AFILE: .*\)"),
    "out_in_proc": (_lines(_v2_row()), ["--out", "/proc/deeptrace_out"],
                    r"--out /proc/deeptrace_out: cannot write the output folder here \(.*/proc/.*\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_cli(tmp_path, media, case):
    text, extra, pattern = BAD_INPUTS[case]
    work = tmp_path / "work"
    work.mkdir()
    (work / "bad.ndjson").write_bytes(text.encode("utf-8", "surrogateescape"))
    (work / "EMPTY").mkdir()
    for name, content in (("EMPTYFILE", b""), ("TEXTFILE", b"not a video\n")):
        (work / name).mkdir()
        (work / name / "sdk_sample_video.mp4").write_bytes(content)
    (work / "AFILE").write_text("a regular file")
    extra = [str(work / a) if a in ("EMPTY", "EMPTYFILE", "TEXTFILE") else a for a in extra]
    extra = [str(work / a) if a.startswith("AFILE/") else a for a in extra]
    if "--media-root" not in extra:
        extra += ["--media-root", str(media)]
    out = tmp_path / "out"
    out.mkdir()  # an earlier run's output must survive a failed run untouched
    (out / "train.jsonl").write_text("earlier\n")
    if "--out" not in extra:
        extra += ["--out", str(out)]
    argv = ["bad.ndjson", *extra]
    if case == "malformed_line":  # one real process: one line on stderr, exit code 2
        proc = subprocess.run([sys.executable, str(CLI), *argv], cwd=work, capture_output=True, text=True, timeout=60)
    else:  # the CLI's main in this process: the same run_cli path without Python's start-up (tests/support/cli.py)
        proc = run_main(main, argv, prog=CLI, cwd=work)
    if pattern == "NO ERROR":
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("labelbox_to_swift.py: error: ")
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["train.jsonl"]
    assert (out / "train.jsonl").read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "work"]  # no staging directory left
    assert not [p for p in work.rglob(".*")]


def test_unreadable_media_when_attributes_missing(tmp_path):
    row = _v2_row()
    del row["media_attributes"]
    (tmp_path / "bad.ndjson").write_text(_lines(row))
    (tmp_path / "sdk_sample_video.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match=r"bad\.ndjson:1: data row \w+: the export gives no width, height, frame rate,"
                                        r" duration or frame count and the video cannot be probed"):
        convert(tmp_path / "bad.ndjson", tmp_path / "out", tmp_path)


# --------------------------------------------------------------------------------------------------------------------
# The bundled sample (README demo)


def test_demo_sample(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "converters/labelbox_to_swift.py", "samples/deeptrace/export_v2.ndjson",
                           "--media-root", "samples/deeptrace/videos", "--real-videos", "samples/deeptrace/real",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_out(out)
    stats = json.loads((out / "stats.json").read_text())
    counts = {s: (stats["splits"][s]["fake_samples"], stats["splits"][s]["real_samples"]) for s in rows}
    assert counts == {"train": (5, 2), "val": (1, 1), "test": (1, 1)}
    assert {s: len(v) for s, v in rows.items()} == {"train": 7, "val": 2, "test": 2}
    assert stats["skipped"]["rows_without_labels"] == 1 and stats["skipped"]["skipped_labels"] == 1
    assert set(stats["categories"]["total"]) == {
        "Object Distortion", "Sudden Blurring", "Object Trajectory", "Redundant Object", "Object Merging",
        "Object Splitting", "Background Distortion", "Object Disappearance", "Unexpected Move"}
    for r in all_rows(rows):
        assert Path(r["videos"][0]).is_absolute() and Path(r["videos"][0]).is_file()
        assert r["meta"]["categories"] == r["meta"]["tags"]  # the sample's tags are the paper's names: unchanged
    assert stats["categories"]["unmapped_tags"] == {}
    assert "; traces per category: Object Distortion " in proc.stdout
    kling = next(r for r in rows["test"] if r["meta"]["label"] == "fake")
    assert kling["meta"]["video_id"] == "kling15_0001.mp4"
    assert kling["messages"][1]["content"] == (
        "FAKE. The video is AI-generated. The unnatural part is at [8, 10, 28, 26] starting 0.4 seconds. "
        "The reason is because The dog's front leg bends backwards at the knee while it runs.")
    assert "train 7" in proc.stdout


# --------------------------------------------------------------------------------------------------------------------
# Trustworthy data: one split per clip, traces inside their clip, real-world files, coherent output folders


def _row_as(row: dict, key: str, drid: str) -> dict:
    row = json.loads(json.dumps(row))
    row["data_row"].update(global_key=key, id=drid)
    return row


def test_rows_sharing_a_clip_share_a_split(tmp_path, media, real_dir, capsys):
    """A clip uploaded twice (two data rows, two keys): by a link, and as a copy under another name."""
    from converters.dataset_writer import SplitRule

    rule = SplitRule.parse("1:1:1", 0)
    names = [f"upload_{i}.mp4" for i in range(40)]
    first = names[0]
    second = next(n for n in names if rule.assign(n) != rule.assign(first))
    third = next(n for n in names if rule.assign(n) not in (rule.assign(first), rule.assign(second)))
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(media / "sdk_sample_video.mp4", clips / first)
    (clips / second).symlink_to(clips / first)
    shutil.copy(clips / first, clips / third)
    (tmp_path / "e.ndjson").write_text(_lines(*(_row_as(_v2_row(), n, f"dr{i}") for i, n in enumerate(
        (first, second, third)))))
    assert main([str(tmp_path / "e.ndjson"), "--out", str(tmp_path / "out"), "--media-root", str(clips),
                 "--split", "1:1:1"]) == 0
    rows = read_out(tmp_path / "out")
    assert {r["meta"]["video_id"]: s for s, items in rows.items() for r in items} == {
        first: rule.assign(first), second: rule.assign(first), third: rule.assign(first)}
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["media_files"]["videos_sharing_a_file"] == 2
    assert stats["media_files"]["videos_moved_to_the_split_of_their_file"] == 2
    assert "; 2 video(s) share a file with an earlier one, in its split (2 moved there)" in capsys.readouterr().out
    shutil.copy(clips / first, real_dir / "also_real.mp4")  # and a real clip with the same bytes is refused
    try:
        with pytest.raises(UserError, match=r"also_real\.mp4 is the clip of real video also_real\.mp4 and of a fake "
                                            r"video before it"):
            main([str(tmp_path / "e.ndjson"), "--out", str(tmp_path / "x"), "--media-root", str(clips),
                  "--real-videos", str(real_dir), "-q"])
    finally:
        (real_dir / "also_real.mp4").unlink()


def test_skip_invalid_leaves_out_and_counts(tmp_path, media, capsys):
    good = _v2_row()
    late = _row_as(_v2_row(frame_count=15, duration=1.5), "consensus.mp4", "drlate")  # [18, 19] starts at 1.7 s
    fractional = json.loads(json.dumps(_row_as(_v2_row(), "clipped.mp4", "drfrac")).replace("[13, 13]", "[13, 13.5]"))
    (tmp_path / "e.ndjson").write_text(_lines(good, late, fractional))
    with pytest.raises(UserError, match=r"e\.ndjson:2: data row drlate label \w+: object \w+ segment \[18, 19\] "
                                        r"\(1\.700-1\.900 s\) starts after its clip"):
        main([str(tmp_path / "e.ndjson"), "--out", str(tmp_path / "x"), "--media-root", str(media), "-q"])
    assert main([str(tmp_path / "e.ndjson"), "--out", str(tmp_path / "out"), "--media-root", str(media),
                 "--skip-invalid", "--split", "1:0:0"]) == 0
    rows = read_out(tmp_path / "out")
    assert sorted((r["meta"]["video_id"], r["meta"]["start"]) for r in all_rows(rows)) == [
        ("consensus.mp4", 1.2), ("sdk_sample_video.mp4", 1.2), ("sdk_sample_video.mp4", 1.7)]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert (stats["skipped"]["traces_starting_after_clip_end"], stats["skipped"]["traces_ending_after_clip_end"],
            stats["skipped"]["labels_with_fractional_frame_numbers"]) == (1, 0, 1)
    assert stats["skipped"]["fake_videos_without_traces"] == 1  # the fractional row's only label
    assert capsys.readouterr().out.rstrip().endswith(
        "; left out as invalid (--skip-invalid): labels_with_fractional_frame_numbers 1, "
        "traces_starting_after_clip_end 1")


def test_bom_gzip_and_v1_frames_files_read_transparently(tmp_path, media):
    ref, _ = convert(FIX / "v2_pitfalls.ndjson", tmp_path / "ref", media)
    data = (FIX / "v2_pitfalls.ndjson").read_bytes()
    (tmp_path / "bom.ndjson").write_bytes(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"))
    (tmp_path / "export.ndjson.gz").write_bytes(gzip.compress(data))
    for name in ("bom.ndjson", "export.ndjson.gz"):
        rows, stats = convert(tmp_path / name, tmp_path / f"out_{name}", media)
        assert [r["meta"] for r in all_rows(rows)] == [r["meta"] for r in all_rows(ref)], name
        assert stats["input_format"] == "labelbox-export-v2-ndjson"
    v1 = FIX / "v1_frames_file"
    ref, _ = convert(v1 / "export.json", tmp_path / "v1_ref", media, "--split", "1:0:0")
    gz = tmp_path / "v1"
    gz.mkdir()
    (gz / "export.json.gz").write_bytes(gzip.compress((v1 / "export.json").read_bytes()))
    frames = next(v1.glob("*.ndjson"))
    (gz / f"{frames.name}.gz").write_bytes(gzip.compress(frames.read_bytes()))  # <label id>.ndjson.gz
    rows, _ = convert(gz / "export.json.gz", tmp_path / "v1_out", media, "--split", "1:0:0")
    assert rows == ref


def test_every_missing_clip_is_listed(tmp_path, media, capsys):
    export = tmp_path / "e.ndjson"
    export.write_text(_lines(*(_row_as(_v2_row(), f"gone_{i:02d}.mp4", f"dr{i:02d}") for i in range(12)),
                             _v2_row()))
    out = tmp_path / "data" / "deeptrace"
    with pytest.raises(UserError) as err:
        main([str(export), "--out", str(out), "--media-root", str(media), "-q"])
    listing = tmp_path / "data" / "deeptrace.missing-media.tsv"
    assert str(err.value).endswith(f"all 12 listed in {listing} (set --media-root, or pass --skip-missing to skip "
                                   "them)")
    assert [line.split("\t")[0] for line in listing.read_text().splitlines()[2:]] == [
        f"gone_{i:02d}.mp4" for i in range(12)]
    assert not out.exists()
    for i in range(12):
        shutil.copy(media / "consensus.mp4", media / f"gone_{i:02d}.mp4")
    try:
        assert main([str(export), "--out", str(out), "--media-root", str(media), "-q"]) == 0
    finally:
        for i in range(12):
            (media / f"gone_{i:02d}.mp4").unlink()
    assert not listing.exists()  # the run that found every clip removed the stale listing
