"""converters/fakeclue_to_swift.py on FakeClue-shaped annotation files with real images: output shape, the <image>
tag, labels, the seeded stratified --limit, JSON Lines input, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from common.errors import UserError
from common.jsonl import read_jsonl
from converters import fakeclue_to_swift as conv
from tests.support.fakeclue_data import QUESTION, answer, record, records, write_annotation, write_images

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "converters" / "fakeclue_to_swift.py"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    """70 records (7 categories x 5 fake + 5 real, ordered by category) with a PNG each."""
    root = tmp_path_factory.mktemp("fakeclue")
    recs = list(records(70))
    write_images(root / "images", recs)
    return write_annotation(root / "test.json", recs), root / "images", recs


def run(*args: object) -> int:
    return conv.main([str(a) for a in args] + ["-q"])


def test_converts_every_record(sample, tmp_path: Path) -> None:
    annotation, images, recs = sample
    out = tmp_path / "out" / "test.jsonl"
    assert run(annotation, "--image-root", images, "--out", out) == 0
    rows = read_jsonl(out)
    assert len(rows) == 70
    for rec, row in zip(recs, rows, strict=True):  # file order kept
        assert row["messages"] == [{"role": "user", "content": QUESTION},
                                   {"role": "assistant", "content": rec["conversations"][1]["value"]}]
        assert row["images"] == [str((images / rec["image"]).resolve())] and Path(row["images"][0]).is_file()
        assert row["meta"] == {"task": "fakeclue", "label": "fake" if rec["label"] == 0 else "real",
                               "cate": rec["cate"], "answer": rec["conversations"][1]["value"],
                               "image": rec["image"], "width": 256, "height": 256}
    stats = json.loads((tmp_path / "out" / "test.stats.json").read_text())
    assert (stats["samples"], stats["fake"], stats["real"], stats["records_read"]) == (70, 35, 35, 70)
    assert stats["by_cate"]["doc"] == {"fake": 5, "real": 5} and len(stats["by_cate"]) == 7
    assert stats["checks"]["answer_contradicts_label"] == 0 and stats["subset"] is None


def test_image_tag_roles_labels_and_checks(tmp_path: Path) -> None:
    recs = [record(i, "object", i % 2) for i in range(6)]
    recs[0]["conversations"][0]["value"] = "<image>\nDoes the image looks real/fake?"  # LLaVA's layout
    recs[1]["conversations"][0]["value"] = "Does the image looks real/fake?\n<image>"  # tag after the question
    recs[2]["conversations"][0]["value"] = "Does the image looks real/fake?"  # no tag
    recs[3]["conversations"][0]["value"] = "<image> <image>Does the image looks real/fake?"  # two tags
    recs[4]["conversations"] = [{"from": "system", "value": "Be brief."}, {"from": "USER", "value": QUESTION},
                                {"from": "assistant", "value": answer(0, 4)}]
    recs[4]["label"] = "fake"  # string labels are read too
    recs[5]["conversations"][1]["value"] = "This is a fake image. The grass is too green."  # label says real
    write_images(tmp_path / "img", recs)
    out = tmp_path / "o.jsonl"
    assert run(write_annotation(tmp_path / "a.json", recs), "--image-root", tmp_path / "img", "--out", out) == 0
    rows = read_jsonl(out)
    for row in rows[:4]:
        assert row["messages"][0] == {"role": "user", "content": QUESTION}
    assert [m["role"] for m in rows[4]["messages"]] == ["system", "user", "assistant"]
    assert rows[4]["messages"][0]["content"] == "Be brief." and rows[4]["meta"]["label"] == "fake"
    stats = json.loads((tmp_path / "o.stats.json").read_text())
    assert stats["adjusted"] == {"image_tag_added": 1, "image_tag_moved_or_merged": 2}
    assert stats["checks"]["answer_contradicts_label"] == 1
    assert stats["checks"]["records"]["answer_contradicts_label"] == ["record 6"]
    with pytest.raises(UserError, match=r"record 6 \(object/real/000005.png\): the gpt answer says fake but the "
                                        r"label is real \(--strict\)"):
        run(tmp_path / "a.json", "--image-root", tmp_path / "img", "--out", tmp_path / "s.jsonl", "--strict")
    assert not (tmp_path / "s.jsonl").exists()


def test_limit_is_a_seeded_stratified_subset_in_file_order(sample, tmp_path: Path) -> None:
    annotation, images, recs = sample
    chosen = {}
    for seed in (0, 0, 1):
        out = tmp_path / f"s{seed}.jsonl"
        assert run(annotation, "--image-root", images, "--out", out, "--limit", 14, "--seed", seed) == 0
        rows = read_jsonl(out)
        strata = Counter((r["meta"]["cate"], r["meta"]["label"]) for r in rows)
        assert len(rows) == 14 and set(strata.values()) == {1} and len(strata) == 14  # one per (cate, label)
        order = [int(Path(r["meta"]["image"]).stem) for r in rows]
        assert order == sorted(order)  # file order
        if seed in chosen:
            assert chosen[seed] == order  # same seed, same subset
        chosen[seed] = order
    assert chosen[0] != chosen[1]
    stats = json.loads((tmp_path / "s1.stats.json").read_text())
    assert stats["subset"]["limit"] == 14 and stats["samples"] == 14 and stats["records_read"] == 70
    # A limit above the record count keeps everything.
    assert run(annotation, "--image-root", images, "--out", tmp_path / "all.jsonl", "--limit", 1000) == 0
    assert len(read_jsonl(tmp_path / "all.jsonl")) == 70


def test_stratified_subset_is_proportional() -> None:
    strata = [("a", "fake")] * 60 + [("a", "real")] * 20 + [("b", "fake")] * 14 + [("b", "real")] * 6
    picked = conv.stratified_subset(strata, 10, seed=3)
    got = Counter(strata[i] for i in picked)
    # exact shares 6, 2, 1.4, 0.6: floors 6, 2, 1, 0 and the one left over to the largest remainder (0.6)
    assert got == {("a", "fake"): 6, ("a", "real"): 2, ("b", "fake"): 1, ("b", "real"): 1}
    ties = conv.stratified_subset([("a", "fake")] * 3 + [("b", "fake")] * 3, 3, seed=0)  # 1.5 each: larger, then name
    assert len([i for i in ties if i < 3]) == 2
    assert picked == conv.stratified_subset(strata, 10, seed=3)
    assert len(conv.stratified_subset(strata, 99, seed=0)) == 99


def test_json_lines_input(sample, tmp_path: Path) -> None:
    _, images, recs = sample
    lines = tmp_path / "test.jsonl.txt"
    lines.write_text("".join(json.dumps(r) + "\n" for r in recs[:5]))
    assert run(lines, "--image-root", images, "--out", tmp_path / "o.jsonl") == 0
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 5


def test_missing_images_listed_and_skippable(sample, tmp_path: Path) -> None:
    annotation, images, recs = sample
    partial = tmp_path / "partial"
    write_images(partial, recs[:62], empty=True)  # 8 images missing
    out = tmp_path / "o.jsonl"
    out.write_text("earlier output\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(annotation), "--image-root", str(partial), "--out",
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fakeclue_to_swift.py: error: 8 image(s) not found under "
                                                  f"{partial.resolve()}: doc/fake/000062.png (record 63), ")
    assert "and 3 more (set --image-root, or pass --skip-missing to skip them)" in lines[0]
    assert out.read_text() == "earlier output\n" and not (tmp_path / "o.stats.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert run(annotation, "--image-root", partial, "--out", out, "--skip-missing") == 0
    assert len(read_jsonl(out)) == 62
    stats = json.loads((tmp_path / "o.stats.json").read_text())
    assert stats["skipped"]["missing_images"] == 8 and stats["missing_images"][0]["record"] == "record 63"
    # With --limit the subset is drawn from the records that have an image.
    assert run(annotation, "--image-root", partial, "--out", out, "--skip-missing", "--limit", 60) == 0
    assert len(read_jsonl(out)) == 60


def _bad(tmp_path: Path, name: str, content: str | list) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_bad_input_is_one_line(sample, tmp_path: Path) -> None:
    annotation, images, recs = sample
    good = recs[0]
    cases = [
        (_bad(tmp_path, "trunc.json", json.dumps(recs[:3])[:-40]), r"trunc.json: invalid JSON after record 2: "),
        (_bad(tmp_path, "empty.json", ""), r"empty.json: the annotation file is empty"),
        (_bad(tmp_path, "none.json", []), r"none.json: the annotation file is an empty JSON array"),
        (_bad(tmp_path, "text.json", "hello"), r"text.json: expected a JSON array of FakeClue records"),
        (_bad(tmp_path, "scalar.json", [good, 3]), r"scalar.json: record 2: expected an object, got int"),
        (_bad(tmp_path, "label.json", [{**good, "label": 2}]),
         r"label.json: record 1 \(deepfake/fake/000000.png\): `label` must be 0 \(fake\) or 1 \(real\), got 2"),
        (_bad(tmp_path, "bool.json", [{**good, "label": True}]), r"`label` must be 0 \(fake\) or 1 \(real\), got True"),
        (_bad(tmp_path, "img.json", [{**good, "image": ""}]), r"record 1: `image` must be a non-empty path string"),
        (_bad(tmp_path, "conv.json", [{**good, "conversations": good["conversations"][:1] * 2}]),
         r"conversations must alternate human, gpt and end with gpt, or be the one human turn of an "
         r"evaluation-only record \(got human, human\)"),
        (_bad(tmp_path, "role.json", [{**good, "conversations": [{"from": "bot", "value": "x"}]}]),
         r"conversations\[1\] is from 'bot'; expected human or gpt"),
        (_bad(tmp_path, "jsonl.json", json.dumps(good) + "\n{oops\n"), r"jsonl.json:2: invalid JSON"),
        (tmp_path / "nope.json", r"nope.json: annotation file not found"),
    ]
    for path, message in cases:
        with pytest.raises(UserError, match=message):
            run(path, "--image-root", images, "--out", tmp_path / "bad.jsonl")
        assert not (tmp_path / "bad.jsonl").exists(), path
    with pytest.raises(UserError, match=r"--image-root directory not found"):
        run(annotation, "--image-root", tmp_path / "noimg", "--out", tmp_path / "bad.jsonl")
    with pytest.raises(UserError, match=r"expected a \.jsonl file name"):
        run(annotation, "--image-root", images, "--out", tmp_path / "bad.json")
    with pytest.raises(UserError, match=r"argument --limit: expected an integer >= 1, got 0 \(see --help\)"):
        run(annotation, "--image-root", images, "--out", tmp_path / "bad.jsonl", "--limit", 0)


def test_question_only_records_convert_for_inference(sample, tmp_path: Path) -> None:
    """An evaluation-only layout: the human turn without the gpt answer becomes a question-only row."""
    _, images, recs = sample
    recs = [dict(r) for r in recs[:4]]
    for r in recs[1:3]:
        r["conversations"] = r["conversations"][:1]
    out = tmp_path / "q.jsonl"
    assert run(write_annotation(tmp_path / "q.json", recs), "--image-root", images, "--out", out) == 0
    rows = read_jsonl(out)
    assert [len(r["messages"]) for r in rows] == [2, 1, 1, 2]
    assert rows[1]["messages"] == [{"role": "user", "content": QUESTION}]
    assert rows[1]["meta"]["answer"] is None and rows[1]["meta"]["label"] == "real"
    stats = json.loads((tmp_path / "q.stats.json").read_text())
    assert stats["question_only"] == 2 and stats["checks"]["answer_without_verdict"] == 0


def test_the_converter_imports_nothing_from_eval() -> None:
    code = ("import sys; import converters.fakeclue_to_swift; "
            "print(sorted(m for m in sys.modules if m == 'eval' or m.startswith('eval.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
