"""eval/score.py's per-category breakdown (DeeptraceReward): the paper's nine categories in the paper's order with n
per category, multi-label samples counted in each, other categories after them, `--by tags` for the raw tags; the
HTML report's chart and table follow the same order."""

from __future__ import annotations

import json
import re
from pathlib import Path

from eval import report, score
from tests.support.cli import run_main
from tests.support.eval_samples import prediction, reference, write

ROOT = Path(__file__).resolve().parents[2]


def _refs(with_tags: bool = True) -> list[dict]:
    def fake(vid, categories, tags, start=1.0):
        ref = reference(vid, "fake", bbox=[100, 100, 300, 300], start=start, explanation="It melts.",
                        categories=categories)
        if with_tags:
            ref["meta"]["tags"] = tags
        return ref

    return [
        fake("v1", ["Unexpected Move", "Object Distortion"], ["still things", "shape distortion"]),
        fake("v2", ["Object Distortion"], ["deformation"], start=3.0),
        fake("v3", ["light effect"], ["light effect"]),  # a tag the converter's map did not cover
        fake("v4", ["Background Distortion"], ["background deformation"]),
        fake("v5", [], []),
        fake("v6", ["Redundant Object"], ["extra object"]),
        reference("r1", "real"),
    ]


def _score(tmp_path: Path, refs: list[dict], *extra: str):
    preds = [prediction(r) for r in refs]
    preds[1] = prediction(refs[1], "REAL. The video is real. There is no unnatural part.")  # v2 missed
    write(tmp_path / "refs.jsonl", refs)
    write(tmp_path / "preds.jsonl", preds)
    out = tmp_path / f"m{len(extra)}.json"
    proc = run_main(score.main, ["--predictions", tmp_path / "preds.jsonl", "--references", tmp_path / "refs.jsonl",
                                 "--no-judge", "--bootstrap", "0", "--out", out, *extra], prog=ROOT / "eval/score.py")
    return proc, (json.loads(out.read_text()) if proc.returncode == 0 else None)


def test_by_paper_category_in_the_papers_order(tmp_path):
    proc, result = _score(tmp_path, _refs())
    assert proc.returncode == 0, proc.stderr
    table = result["by_category"]
    assert list(table) == ["Object Distortion", "Redundant Object", "Background Distortion", "Unexpected Move",
                           "light effect", "(none)"]  # the paper's order (not the alphabet's), then the rest
    assert {k: v["counts"]["n"] for k, v in table.items()} == {
        "Object Distortion": 2, "Redundant Object": 1, "Background Distortion": 1, "Unexpected Move": 1,
        "light effect": 1, "(none)": 1}
    assert table["Object Distortion"]["metrics"]["fake_accuracy"] == 50.0  # v1 right, v2 missed
    assert table["Unexpected Move"]["metrics"]["fake_accuracy"] == 100.0
    assert result["settings"]["by"] == "categories"
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    header = rows.index(next(r for r in rows if r.startswith("| category | n |")))
    assert [r.split(" | ")[0][2:] for r in rows[header + 1:header + 7]] == list(table)  # "|---|" is not "| "
    assert rows[header + 1].startswith("| Object Distortion | 2 | ")


def test_by_tags(tmp_path):
    proc, result = _score(tmp_path, _refs(), "--by", "tags")
    assert proc.returncode == 0, proc.stderr
    assert list(result["by_category"]) == ["background deformation", "deformation", "extra object", "light effect",
                                           "shape distortion", "still things", "(none)"]  # by n (all 1), then name
    assert result["settings"]["by"] == "tags"
    assert "| tag | n |" in proc.stdout
    proc, _ = _score(tmp_path, _refs(with_tags=False), "--by", "tags")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "score.py: error: --by tags: 6 fake reference(s) have no meta.tags (converted before the converters wrote "
        "them): convert them again, or break down --by categories"]


def test_the_report_follows_the_papers_order(tmp_path):
    proc, result = _score(tmp_path, _refs())
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "report"
    assert report.main(["--predictions", str(tmp_path / "preds.jsonl"), "--references", str(tmp_path / "refs.jsonl"),
                        "--metrics", str(tmp_path / "m0.json"), "--out", str(out), "--no-frames",
                        "--no-progress"]) == 0
    html = (out / "index.html").read_text()
    found = [name for name in result["by_category"] if re.search(rf">{re.escape(name)}<", html)]
    positions = [html.index(f">{name}<") for name in found]
    assert found[:4] == ["Object Distortion", "Redundant Object", "Background Distortion", "Unexpected Move"]
    assert positions == sorted(positions)
    assert (out / "assets" / "category.png").is_file()
