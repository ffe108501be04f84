"""DeepfakeJudge without swift: byte-exact templates and filling, output parsers, the converter (released splits and
--build), and the three scorers with hand-computed metrics, through the real CLIs.

The released-shaped sample splits built here (`write_split`) are reused by tests/recipes/test_deepfakejudge.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from common.jsonl import read_jsonl, write_jsonl
from converters import deepfakejudge_to_swift as conv
from eval import score as score_cli
from prompts import deepfakejudge as P
from tests.support.media import write_png

ROOT = Path(__file__).resolve().parents[2]
SHA256 = {  # of the upstream files (github.com/KjAeRsTuIsK/DeepfakeJudge @ 078ce19, CRLF)
    "pointwise_prompt.txt": "0b33ef73c8cda74891bab9548a32f76ef8edc2ca5d26a1527c0e6727b72e172b",
    "pairwise_prompt.txt": "046059c0b12fb79224af77a74216886b495e78723eb48e24d492ef5046b9390c",
}
# The upstream README's examples (github.com/KjAeRsTuIsK/DeepfakeJudge README, input/output section).
README_CANDIDATE = ("<reasoning>The lighting casts soft shadows around the nose and under the lower lip consistent "
                    "with a frontal source. Facial features such as wrinkles, pores, and beard stubble have fine "
                    "texture and depth.</reasoning> <answer>real</answer>")
README_A = ("<reasoning>The lighting appears natural and consistent across the face with realistic shadows."
            "</reasoning> <answer>real</answer>")
README_B = ("<reasoning>The image shows signs of manipulation near the edges with unnatural blending artifacts."
            "</reasoning> <answer>fake</answer>")
GOOD = "<reasoning>Soft, natural daylight; stitches of the knit hat are consistent.</reasoning> <answer>real</answer>"
BAD = "<reasoning>The hands have six fingers.</reasoning> <answer>fake</answer>"


# --- released-shaped sample data (images/ + data.jsonl) -----------------------------------------------------------


def pointwise_record(i: int, label: str, response: str, score: int, *, tag: bool = True) -> dict:
    prompt = (P.IMAGE_TAG if tag else "") + P.pointwise_prompt(label, response)
    target = f"<reasoning>Rated {score}.</reasoning>\n<score>{score}</score>"
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": target}],
            "images": [f"images/{i:03d}.png"]}


def pairwise_record(i: int, label: str, a: str, b: str, choice: str) -> dict:
    return {"messages": [{"role": "user", "content": P.IMAGE_TAG + P.pairwise_prompt(label, a, b)},
                         {"role": "assistant", "content": f"<answer>{choice}</answer>"}],
            "images": [f"images/{i:03d}.png"]}


def detect_record(i: int, label: str) -> dict:
    return {"messages": [{"role": "user", "content": "<image>Is this image real, fake or edited?"},
                         {"role": "assistant", "content": f"<reasoning>Because.</reasoning> <answer>{label}</answer>"}],
            "images": [f"images/{i:03d}.png"]}


def write_split(root: Path, records: list[dict]) -> Path:
    """A released split: images/NNN.png (generated) + data.jsonl with image paths relative to `root`."""
    for record in records:
        for image in record["images"]:
            if not (root / image).exists():
                write_png(root / image, int(Path(image).stem))
    write_jsonl(root / "data.jsonl", records)
    return root


def pointwise_split(root: Path, n: int = 6) -> Path:
    labels, responses = ("real", "fake", "edited"), (GOOD, BAD, README_CANDIDATE)
    return write_split(root, [pointwise_record(i, labels[i % 3], responses[i % 3], i % 5 + 1, tag=i != 1)
                              for i in range(n)])


def pairwise_split(root: Path, n: int = 4) -> Path:
    return write_split(root, [pairwise_record(i, "real", GOOD, BAD, "A") if i % 2 == 0 else
                              pairwise_record(i, "fake", GOOD, BAD, "B") for i in range(n)])


def fakeclue_refs(root: Path, labels: list[str]) -> Path:
    """FakeClue-converter-shaped references: LLaVA question/answer as ms-swift messages, absolute image, meta.label."""
    rows = []
    for i, label in enumerate(labels):
        image = write_png(root / "fakeclue" / f"{i}.png", 40 + i)
        answer = f"This is a {label} image. " + ("The fur merges into the fence." if label == "fake" else
                                                  "Lighting and shadows are consistent.")
        rows.append({"messages": [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                                  {"role": "assistant", "content": answer}],
                     "images": [str(image)], "meta": {"task": "fakeclue", "label": label}})
    write_jsonl(root / "fakeclue_test.jsonl", rows)
    return root / "fakeclue_test.jsonl"


def infer_lines(refs: Path, responses: list[str], out: Path) -> Path:
    """`swift infer --result_path` lines for `refs` (response, labels, messages, images as {bytes, path})."""
    rows = []
    for ref, response in zip(read_jsonl(refs), responses, strict=True):
        last = ref["messages"][-1]
        labels = last["content"] if last["role"] == "assistant" else None
        prompt = ref["messages"][:-1] if labels is not None else ref["messages"]
        rows.append({"response": response, "labels": labels, "logprobs": None,
                     "messages": [*prompt, {"role": "assistant", "content": response}],
                     "images": [{"bytes": None, "path": p} for p in ref["images"]], "videos": None,
                     "objects": None, "dataset": str(refs)})
    write_jsonl(out, rows)
    return out


def run_converter(*args: object) -> list[dict]:
    argv = [str(a) for a in args]
    assert conv.main(argv) == 0
    return read_jsonl(argv[argv.index("--out") + 1])


def run_score(tmp_path: Path, refs: Path, responses: list[str], *flags: str) -> dict:
    preds = infer_lines(refs, responses, tmp_path / f"{refs.stem}.preds.jsonl")
    out = tmp_path / f"{refs.stem}.metrics.json"
    assert score_cli.main(["--predictions", str(preds), "--references", str(refs), "--out", str(out),
                           "--bootstrap", "0", *flags]) == 0
    return json.loads(out.read_text())


# --- templates ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHA256))
def test_templates_are_byte_exact_upstream_copies(name: str) -> None:
    data = (ROOT / "prompts" / "deepfakejudge" / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[name]
    assert data.count(b"\n") == data.count(b"\r\n") > 20  # CRLF throughout
    assert P.load(f"deepfakejudge/{name}").encode() == data  # loading translates no newlines


def test_filling_is_byte_exact_where_str_format_fails() -> None:
    with pytest.raises(KeyError):
        P.POINTWISE.format(ground_truth_label="real", candidate_response=README_CANDIDATE)
    with pytest.raises(KeyError):
        P.PAIRWISE.format(ground_truth_label="real", response_a=README_A, response_b=README_B)
    point = (ROOT / "prompts/deepfakejudge/pointwise_prompt.txt").read_bytes()
    pair = (ROOT / "prompts/deepfakejudge/pairwise_prompt.txt").read_bytes()
    assert P.pointwise_prompt("real", README_CANDIDATE).encode() == point.replace(
        b"{ground_truth_label}", b"real").replace(b"{candidate_response}", README_CANDIDATE.encode())
    assert P.pairwise_prompt("real", README_A, README_B).encode() == pair.replace(
        b"{ground_truth_label}", b"real").replace(b"{response_a}", README_A.encode()).replace(
        b"{response_b}", README_B.encode())
    filled = P.pairwise_prompt("edited", README_A, README_B)
    assert "{A_or_B}" in filled and "Ground Truth Label: edited\r\nInput:\r\nResponse A:\r\n" + README_A in filled
    # Single pass: a response that quotes a placeholder is inserted verbatim, never substituted again.
    quoting = "I would answer {response_b} and {ground_truth_label}."
    assert P.pairwise_prompt("fake", quoting, "B!").count(quoting) == 1
    assert P.match_pairwise(P.pairwise_prompt("fake", quoting, "B!")) == {
        "ground_truth_label": "fake", "response_a": quoting, "response_b": "B!"}
    with pytest.raises(ValueError, match="ground-truth label"):
        P.pointwise_prompt("Fake", "x")


def test_swapping_a_pairwise_prompt_keeps_every_other_byte() -> None:
    prompt = P.IMAGE_TAG + P.pairwise_prompt("real", README_A, README_B)
    assert P.swap_pairwise(prompt) == P.IMAGE_TAG + P.pairwise_prompt("real", README_B, README_A)
    lf = prompt.replace("\r\n", "\n")  # a copy whose line endings were normalised still matches, and stays LF
    assert P.swap_pairwise(lf) == (P.IMAGE_TAG + P.pairwise_prompt("real", README_B, README_A)).replace("\r\n", "\n")
    assert P.swap_pairwise("<image>Which is better, A or B?") is None
    assert P.swap_choice("<answer>A</answer>") == "<answer>B</answer>"
    assert P.swap_choice("Final: <answer> b </answer>") == "Final: <answer> A </answer>"


@pytest.mark.parametrize(("text", "value"), [
    ("<reasoning>Fully accurate...</reasoning>\n<score>5</score>", 5), ("<score> 3 </score>", 3),
    ("<SCORE>2</SCORE>", 2), ("<score>4.0</score>", 4), ("<score>4</score> ... <score>4</score>", 4),
    ("<score>4</score><score>2</score>", None), ("<score>0</score>", None), ("<score>6</score>", None),
    ("<score>3.5</score>", None), ("<score>{integer score from 1 to 5}</score>", None), ("Score: 4", None),
    ("", None), (None, None),
])
def test_parse_score(text, value) -> None:
    assert P.parse_score(text).value == value
    assert (P.parse_score(text).issue is None) == (value is not None)


@pytest.mark.parametrize(("text", "value"), [
    ("<answer>A</answer>", "A"), ("<answer> b </answer>", "B"), (" B\n", "B"), ("<answer>{A_or_B}</answer>", None),
    ("<answer>A</answer> or <answer>B</answer>", None), ("Response A is better.", None), ("<answer>C</answer>", None),
])
def test_parse_choice(text, value) -> None:
    assert P.parse_choice(text).value == value


@pytest.mark.parametrize(("text", "value"), [
    ("<reasoning>x</reasoning> <answer>real</answer>", "real"), ("<answer>FAKE</answer>", "fake"),
    ("<answer>edited</answer>", "edited"), ("<answer>edited</answer> <answer>fake</answer>", "fake"),
    ("<answer>real</answer> <answer>fake</answer>", None), ("This is a fake image.", None),
    ("<answer>unsure</answer>", None),
])
def test_parse_label(text, value) -> None:
    assert P.parse_label(text).value == value


# --- converting released splits --------------------------------------------------------------------------------


def test_convert_pointwise_split(tmp_path: Path) -> None:
    split = pointwise_split(tmp_path / "dfj-meta-pointwise" / "test")
    rows = run_converter(split, "--out", tmp_path / "out.jsonl")
    source = read_jsonl(split / "data.jsonl")
    assert len(rows) == 6
    for i, (row, rec) in enumerate(zip(rows, source, strict=True)):
        assert row["images"] == [str((split / f"images/{i:03d}.png").resolve())]
        assert Path(row["images"][0]).is_file()
        assert row["meta"] == {"task": "dfj-pointwise", "score": i % 5 + 1, "label": ("real", "fake", "edited")[i % 3],
                               "source": str(split / "data.jsonl"), "line": i + 1}
        assert row["messages"][-1] == rec["messages"][-1]
        user = row["messages"][0]["content"]
        assert user.startswith(P.IMAGE_TAG) and user.count(P.IMAGE_TAG) == 1
        assert user.removeprefix(P.IMAGE_TAG) == rec["messages"][0]["content"].removeprefix(P.IMAGE_TAG)
    # Giving the data.jsonl instead of the directory is the same; so is naming the task.
    assert run_converter(split / "data.jsonl", "--task", "dfj-pointwise", "--out", tmp_path / "o2.jsonl") == rows
    # gzip-compressed, given as the file or found in the directory: the same rows (bar the source named in meta)
    packed = split / "data.jsonl.gz"
    packed.write_bytes(gzip.compress((split / "data.jsonl").read_bytes()))
    unpacked = [{**r, "meta": {**r["meta"], "source": str(packed)}} for r in rows]
    assert run_converter(packed, "--out", tmp_path / "o3.jsonl") == unpacked
    (split / "data.jsonl").unlink()
    assert run_converter(split, "--out", tmp_path / "o4.jsonl") == unpacked


def test_convert_pairwise_split_in_both_orders(tmp_path: Path) -> None:
    split = pairwise_split(tmp_path / "pairwise")
    once = run_converter(split, "--out", tmp_path / "once.jsonl")
    assert [r["meta"]["choice"] for r in once] == ["A", "B", "A", "B"]
    assert [r["meta"]["order"] for r in once] == ["AB"] * 4
    both = run_converter(split, "--both-orders", "--out", tmp_path / "both.jsonl")
    assert len(both) == 8 and both[0::2] == once
    for original, swapped in zip(both[0::2], both[1::2], strict=True):
        label = original["meta"]["label"]
        assert swapped["messages"][0]["content"] == P.IMAGE_TAG + P.pairwise_prompt(label, BAD, GOOD)
        flipped = "B" if original["meta"]["choice"] == "A" else "A"
        assert swapped["messages"][1]["content"] == f"<answer>{flipped}</answer>"
        assert swapped["meta"] == {**original["meta"], "choice": swapped["meta"]["choice"], "order": "BA"}
        assert swapped["meta"]["choice"] != original["meta"]["choice"]
        assert swapped["images"] == original["images"]


def test_convert_detect_and_reason_splits(tmp_path: Path) -> None:
    records = [detect_record(i, label) for i, label in enumerate(["real", "fake", "edited"])]
    detect = write_split(tmp_path / "dfj-bench" / "dfj-detect", records)
    rows = run_converter(detect, "--out", tmp_path / "d.jsonl")
    assert [(r["meta"]["task"], r["meta"]["label"]) for r in rows] == [
        ("dfj-detect", "real"), ("dfj-detect", "fake"), ("dfj-detect", "edited")]
    reason = write_split(tmp_path / "dfj-bench" / "dfj-reason", records)
    assert {r["meta"]["task"] for r in run_converter(reason, "--out", tmp_path / "r.jsonl")} == {"dfj-reason"}
    elsewhere = write_split(tmp_path / "mine", records)  # a directory that names neither: --task decides
    with pytest.raises(UserError, match="pass --task dfj-detect or --task dfj-reason"):
        conv.main([str(elsewhere), "--out", str(tmp_path / "x.jsonl")])
    assert {r["meta"]["task"] for r in run_converter(elsewhere, "--task", "dfj-reason", "--out",
                                                     tmp_path / "m.jsonl")} == {"dfj-reason"}


def test_unknown_keys_are_an_error_unless_kept_or_dropped(tmp_path: Path) -> None:
    record = {**pointwise_record(0, "fake", BAD, 2), "id": "x7", "source_model": "gemini"}
    record["messages"][1]["loss"] = True
    split = write_split(tmp_path / "s", [record])
    with pytest.raises(UserError) as err:
        conv.main([str(split), "--out", str(tmp_path / "x.jsonl")])
    assert "cannot read key(s) id, source_model, messages[1].loss" in str(err.value)
    assert "--extra-keys keep" in str(err.value)
    kept = run_converter(split, "--extra-keys", "keep", "--out", tmp_path / "k.jsonl")[0]
    assert kept["meta"]["extra"] == {"id": "x7", "source_model": "gemini", "messages": [{}, {"loss": True}]}
    assert set(kept) == {"messages", "images", "meta"} and all(set(m) == {"role", "content"} for m in kept["messages"])
    dropped = run_converter(split, "--extra-keys", "drop", "--out", tmp_path / "d.jsonl")[0]
    assert "extra" not in dropped["meta"] and dropped["messages"] == kept["messages"]


def _bad(record: dict, **change) -> dict:
    record = json.loads(json.dumps(record))
    for key, value in change.items():
        if key == "user":
            record["messages"][0]["content"] = value
        elif key == "target":
            record["messages"][1]["content"] = value
        else:
            record[key] = value
    return record


GOOD_RECORD = pointwise_record(0, "fake", BAD, 2)
BAD_RECORDS = [
    ("not an object", [1, 2], "expected a JSON object, got list"),
    ("no messages", {"images": ["images/000.png"]}, "no 'messages'"),
    ("no images", _bad(GOOD_RECORD, images=None) | {"images": []}, "'images' must be a non-empty list"),
    ("role", _bad(GOOD_RECORD, messages=[{"role": "human", "content": "<image>x"},
                                         {"role": "assistant", "content": "<score>2</score>"}]),
     "messages[0].role is 'human'; expected user or system"),
    ("two users", _bad(GOOD_RECORD, messages=[{"role": "user", "content": "<image>x"},
                                              {"role": "user", "content": "<score>2</score>"}]),
     "messages[1].role is 'user'; expected assistant"),
    ("no target", _bad(GOOD_RECORD, messages=[{"role": "user", "content": "<image>x"}]),
     "the last message must be the assistant's target"),
    ("empty target", _bad(GOOD_RECORD, target="  "), "the assistant target (last message) is empty"),
    ("tags", _bad(GOOD_RECORD, user="<image><image>x"), "2 <image> tag(s) for 1 image(s)"),
    ("content list", _bad(GOOD_RECORD, user=[{"type": "text", "text": "x"}]), "messages[0].content must be a string"),
    ("score", _bad(GOOD_RECORD, target="<score>7</score>"), "cannot tell the task"),
    ("image", _bad(GOOD_RECORD, images=["images/999.png"]), "image not found"),
]


@pytest.mark.parametrize(("case", "record", "message"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
def test_bad_records_fail_with_the_line(tmp_path: Path, case: str, record, message: str) -> None:
    split = write_split(tmp_path / "s", [GOOD_RECORD])
    write_jsonl(split / "data.jsonl", [GOOD_RECORD, record])
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserError) as err:
        conv.main([str(split), "--out", str(out)])
    assert str(err.value).startswith(f"{split / 'data.jsonl'}:2: ") and message in str(err.value), str(err.value)
    assert not out.exists()


def test_task_mismatches_fail(tmp_path: Path) -> None:
    split = write_split(tmp_path / "s", [GOOD_RECORD, pairwise_record(1, "real", GOOD, BAD, "A")])
    with pytest.raises(UserError, match="data.jsonl:2: this record is dfj-pairwise but line 1 was dfj-pointwise"):
        conv.main([str(split), "--out", str(tmp_path / "o.jsonl")])
    with pytest.raises(UserError, match=r"data.jsonl:2: the assistant target has no <score>N</score>"):
        conv.main([str(split), "--task", "dfj-pointwise", "--out", str(tmp_path / "o.jsonl")])
    pw = pointwise_split(tmp_path / "p", 2)
    with pytest.raises(UserError, match="--both-orders needs pairwise records"):
        conv.main([str(pw), "--both-orders", "--out", str(tmp_path / "o.jsonl")])
    odd = write_split(tmp_path / "odd", [_bad(pairwise_record(0, "real", GOOD, BAD, "A"), user="<image>A or B?")])
    with pytest.raises(UserError, match="does not follow prompts/deepfakejudge/pairwise_prompt.txt"):
        conv.main([str(odd), "--both-orders", "--out", str(tmp_path / "o.jsonl")])


def test_skip_missing_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    split = pointwise_split(tmp_path / "s", 3)
    (split / "images" / "001.png").unlink()
    rows = run_converter(split, "--skip-missing", "--out", tmp_path / "o.jsonl")
    assert [r["meta"]["line"] for r in rows] == [1, 3]
    assert "skipped missing image 1" in capsys.readouterr().out


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "converters/deepfakejudge_to_swift.py"), str(tmp_path / "no"),
                           "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"deepfakejudge_to_swift.py: error: {tmp_path / 'no'}: split directory not found"]


# --- building judge inputs from any model's generations ----------------------------------------------------------


def test_build_pointwise_from_fakeclue_predictions(tmp_path: Path) -> None:
    refs = fakeclue_refs(tmp_path, ["fake", "real", "fake"])
    responses = ["This is a fake image. The fur merges into the fence.", "This is a fake image. Odd light.",
                 "This is a real image. {response_b} braces stay."]
    preds = infer_lines(refs, responses, tmp_path / "fakeclue_preds.jsonl")
    rows = run_converter("--build", "pointwise", "--candidates", preds, "--references", refs,
                         "--out", tmp_path / "judge.jsonl")
    stored = run_converter("--build", "pointwise", "--candidates", preds, "--references", refs,
                           "--prompt-newlines", "crlf", "--out", tmp_path / "judge_crlf.jsonl")
    path = ROOT / "prompts/deepfakejudge/pointwise_prompt.txt"
    with open(path, encoding="utf-8") as fh:  # upstream's inference: `open(PROMPT_FILE).read()`, text mode
        upstream = fh.read()
    assert "\r" not in upstream and upstream.count("\n") == path.read_bytes().count(b"\r\n")
    for i, (row, crlf, ref, response) in enumerate(zip(rows, stored, read_jsonl(refs), responses, strict=True)):
        label = ref["meta"]["label"]
        assert row["messages"] == [{"role": "user", "content": row["messages"][0]["content"]}]  # no target
        # default: the text upstream's inference fills (its str.format raises KeyError on the literal braces, so
        # the placeholders are replaced by name); the response itself is inserted verbatim
        assert row["messages"][0]["content"] == "<image>" + upstream.replace(
            "{ground_truth_label}", label).replace("{candidate_response}", response)
        # --prompt-newlines crlf: the stored bytes
        assert crlf["messages"][0]["content"].encode() == b"<image>" + path.read_bytes().replace(
            b"{ground_truth_label}", label.encode()).replace(b"{candidate_response}", response.encode())
        assert row["images"] == ref["images"]
        assert row["meta"] == {"task": "dfj-pointwise", "score": None, "label": label, "candidates": [str(preds)],
                               "references": str(refs), "reference_line": i + 1, "candidate_line": i + 1,
                               "prompt_newlines": "lf"}
        assert crlf["meta"] == {**row["meta"], "prompt_newlines": "crlf"}


def test_build_pairwise_in_both_orders(tmp_path: Path) -> None:
    refs = fakeclue_refs(tmp_path, ["fake", "real"])
    a = infer_lines(refs, [GOOD, BAD], tmp_path / "a.jsonl")
    b = infer_lines(refs, [BAD, GOOD], tmp_path / "b.jsonl")
    rows = run_converter("--build", "pairwise", "--candidates", a, b, "--references", refs, "--both-orders",
                         "--out", tmp_path / "pair.jsonl")
    assert [(r["meta"]["pair_id"], r["meta"]["order"], r["meta"]["a"]) for r in rows] == [
        ("1", "AB", 0), ("1", "BA", 1), ("2", "AB", 0), ("2", "BA", 1)]
    assert rows[0]["messages"][0]["content"] == "<image>" + P.pairwise_prompt("fake", GOOD, BAD, newline="lf")
    assert rows[1]["messages"][0]["content"] == "<image>" + P.pairwise_prompt("fake", BAD, GOOD, newline="lf")
    assert rows[3]["messages"][0]["content"] == "<image>" + P.pairwise_prompt("real", GOOD, BAD, newline="lf")
    assert "\r" not in rows[0]["messages"][0]["content"]
    assert all(r["meta"]["choice"] is None and r["meta"]["candidates"] == [str(a), str(b)] for r in rows)
    one = run_converter("--build", "pairwise", "--candidates", a, b, "--references", refs, "--out",
                        tmp_path / "one.jsonl")
    assert one == rows[0::2]


def test_build_errors(tmp_path: Path) -> None:
    refs = fakeclue_refs(tmp_path, ["fake", "real"])
    preds = infer_lines(refs, ["x", "y"], tmp_path / "p.jsonl")
    out = tmp_path / "o.jsonl"

    def fails(message: str, *args: object) -> None:
        with pytest.raises(UserError, match=message):
            conv.main([str(a) for a in args] + ["--out", str(out)])
        assert not out.exists()

    fails("takes 2 --candidates file", "--build", "pairwise", "--candidates", preds, "--references", refs)
    fails("takes 1 --candidates file", "--build", "pointwise", "--candidates", preds, preds, "--references", refs)
    fails("needs --candidates and --references", "--build", "pointwise", "--candidates", preds)
    fails("--both-orders applies to --build pairwise", "--build", "pointwise", "--candidates", preds,
          "--references", refs, "--both-orders")
    rows = read_jsonl(refs)
    rows[1]["meta"]["label"] = 1  # FakeClue's raw 0/1 label, not the converter's
    write_jsonl(tmp_path / "raw.jsonl", rows)
    fails(r"raw.jsonl:2: meta.label must be real, fake or edited", "--build", "pointwise", "--candidates", preds,
          "--references", tmp_path / "raw.jsonl")
    write_jsonl(tmp_path / "rev.jsonl", read_jsonl(preds)[::-1])  # predictions of another order: the join says so
    fails("not in the references' order", "--build", "pointwise", "--candidates", tmp_path / "rev.jsonl",
          "--references", refs)
    write_jsonl(tmp_path / "short.jsonl", read_jsonl(preds)[:1])
    fails("has 1 predictions but", "--build", "pointwise", "--candidates", tmp_path / "short.jsonl", "--references",
          refs)


# --- scoring: hand-computed metrics through eval/score.py --------------------------------------------------------


def test_score_pointwise_hand_computed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    split = write_split(tmp_path / "s", [pointwise_record(i, "fake", BAD, s) for i, s in enumerate([1, 2, 3, 4, 5])])
    refs = tmp_path / "pw.jsonl"
    run_converter(split, "--out", refs)
    # truths 1 2 3 4 5; judged 1, 3, 3, 5 and one unparseable (truth 5)
    responses = ["<reasoning>a</reasoning>\n<score>1</score>", "<score>3</score>", "<score> 3 </score>",
                 "<score>5</score>", "<score>{integer score from 1 to 5}</score>"]
    result = run_score(tmp_path, refs, responses)
    m, s = result["metrics"], result["strict"]
    # parsed: errors 0, 1, 0, 1 -> RMSE sqrt(2/4), MAE 2/4, exact 2/4; Pearson of (1,2,3,4) vs (1,3,3,5):
    # dx = -1.5 -.5 .5 1.5, dy = -2 0 0 2 -> cov 6, sxx 5, syy 8 -> 6 / sqrt(40)
    assert m["rmse"] == pytest.approx(0.5 ** 0.5) and m["mae"] == pytest.approx(0.5)
    assert m["exact_match"] == pytest.approx(50.0) and m["pearson"] == pytest.approx(6 / 40 ** 0.5)
    assert m["mean_score"] == pytest.approx(3.0) and m["mean_truth"] == pytest.approx(2.5)
    # strict: the unparseable (truth 5) counts as 1, error 4 -> errors 0 1 0 1 4
    assert s["rmse"] == pytest.approx((18 / 5) ** 0.5) and s["mae"] == pytest.approx(6 / 5)
    assert s["exact_match"] == pytest.approx(40.0)
    # Pearson of (1,2,3,4,5) vs (1,3,3,5,1): dx -2 -1 0 1 2, dy -1.6 .4 .4 2.4 -1.6 -> cov 2, sxx 10, syy 11.2
    assert s["pearson"] == pytest.approx(2 / (10 * 11.2) ** 0.5)
    assert result["counts"] == {"n": 5, "with_truth": 5, "parsed": 4, "unparseable": 1,
                                "predicted": {"1": 1, "2": 0, "3": 2, "4": 0, "5": 1},
                                "truth": {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}}
    assert result["parse"] == {"issues": {"invalid score": 1}, "unparseable_lines": [5]}
    assert result["task"] == "dfj-pointwise" and result["ci95"] is None
    assert result["join"] == {"by_media": 5, "by_labels": 5, "unverified": 0}
    table = capsys.readouterr().out
    assert "| RMSE ↓ | 0.71 | – | 1.90 |" in table and "parsed 4, unparseable 1" in table


def test_score_pointwise_strict_worst_case_and_undefined_pearson(tmp_path: Path) -> None:
    split = write_split(tmp_path / "s", [pointwise_record(i, "real", GOOD, s) for i, s in enumerate([3, 2, 4])])
    refs = tmp_path / "pw.jsonl"
    run_converter(split, "--out", refs)
    result = run_score(tmp_path, refs, ["no score", "nothing", "<score>4</score>"])
    # truth 3 -> worst 1 (distance 2, the tie goes to 1); truth 2 -> worst 5 (distance 3); truth 4 parsed exactly
    assert result["strict"]["mae"] == pytest.approx((2 + 3 + 0) / 3)
    assert result["metrics"]["pearson"] is None and result["metrics"]["rmse"] == 0.0  # one parsed pair only
    assert result["parse"]["issues"] == {"no score tag": 2}


def test_score_pairwise_accuracy_and_position_consistency(tmp_path: Path) -> None:
    split = pairwise_split(tmp_path / "s", 4)  # truths A B A B
    refs = tmp_path / "pair.jsonl"
    run_converter(split, "--both-orders", "--out", refs)  # truths A B | B A | A B | B A (AB, BA per pair)
    responses = ["<answer>A</answer>", "<answer>B</answer>",  # pair 1: right twice, consistent
                 "<answer>A</answer>", "<answer>A</answer>",  # pair 2: wrong then right: inconsistent (A both times)
                 "<answer>A</answer>", "garbage",  # pair 3: right, then unparseable
                 "B", "<answer>a</answer>"]  # pair 4: right twice (bare letter; lower case), consistent
    result = run_score(tmp_path, refs, responses)
    m, s = result["metrics"], result["strict"]
    assert m["accuracy"] == pytest.approx(100 * 6 / 7) and s["accuracy"] == pytest.approx(100 * 6 / 8)
    assert m["position_consistency"] == pytest.approx(100 * 2 / 3)  # pairs 1, 2, 4 have both orders parsed
    assert s["position_consistency"] == pytest.approx(100 * 2 / 4)
    assert m["choose_a"] == pytest.approx(100 * 5 / 7) and m["win_rate"] is None
    assert result["counts"] == {"n": 8, "with_truth": 8, "parsed": 7, "unparseable": 1, "pairs_both_orders": 4,
                                "chose": {"A": 5, "B": 2}}
    once = tmp_path / "once.jsonl"
    run_converter(split, "--out", once)
    result = run_score(tmp_path, once, ["<answer>A</answer>", "<answer>A</answer>", "<answer>B</answer>",
                                        "<answer>B</answer>"])
    assert result["metrics"]["accuracy"] == 50.0 and result["metrics"]["position_consistency"] is None
    assert result["counts"]["pairs_both_orders"] == 0


def test_score_built_pairwise_win_rate(tmp_path: Path) -> None:
    refs = fakeclue_refs(tmp_path, ["fake", "real", "fake"])
    a = infer_lines(refs, [GOOD] * 3, tmp_path / "a.jsonl")
    b = infer_lines(refs, [BAD] * 3, tmp_path / "b.jsonl")
    judge_in = tmp_path / "judge_in.jsonl"
    run_converter("--build", "pairwise", "--candidates", a, b, "--references", refs, "--both-orders", "--out",
                  judge_in)
    # meta.a: 0 1 | 0 1 | 0 1. Judge picks: A B (a.jsonl twice) | A A (a, then b) | B A (b twice)
    result = run_score(tmp_path, judge_in, ["<answer>A</answer>", "<answer>B</answer>", "<answer>A</answer>",
                                            "<answer>A</answer>", "<answer>B</answer>", "<answer>A</answer>"])
    m = result["metrics"]
    assert m["win_rate"] == pytest.approx(100 * 3 / 6) and m["position_consistency"] == pytest.approx(100 * 2 / 3)
    assert m["accuracy"] is None and result["counts"]["with_truth"] == 0
    assert result["candidates"] == [str(a), str(b)]


def test_score_detect_hand_computed(tmp_path: Path) -> None:
    truths = ["real", "real", "real", "fake", "fake", "edited", "edited", "real"]
    split = write_split(tmp_path / "dfj-detect", [detect_record(i, t) for i, t in enumerate(truths)])
    refs = tmp_path / "d.jsonl"
    run_converter(split, "--out", refs)
    answers = ["real", "real", "fake", "fake", "real", "fake", "edited", None]
    result = run_score(tmp_path, refs, [f"<answer>{x}</answer>" if x else "I cannot tell." for x in answers])
    m, s = result["metrics"], result["strict"]
    # parsed (7): real 3 (2 right), fake-or-edited 4 (3 right). Real: tp 2, fp 1, fn 1 -> F1 4/6; fake: tp 3, fp 1,
    # fn 1 -> 6/8; accuracy 5/7.
    assert m["accuracy"] == pytest.approx(100 * 5 / 7)
    assert m["real_f1"] == pytest.approx(100 * 4 / 6) and m["fake_f1"] == pytest.approx(100 * 6 / 8)
    # strict: the unparseable real counts as fake: real tp 2, fp 1, fn 2 -> 4/7; fake tp 3, fp 2, fn 1 -> 6/9
    assert s["accuracy"] == pytest.approx(100 * 5 / 8)
    assert s["real_f1"] == pytest.approx(100 * 4 / 7) and s["fake_f1"] == pytest.approx(100 * 6 / 9)
    assert result["recall_by_label"] == {"real": pytest.approx(100 * 2 / 3), "fake": 50.0, "edited": 100.0}
    assert result["counts"]["truth"] == {"real": 4, "fake": 2, "edited": 2}
    assert result["counts"]["predicted"] == {"real": 3, "fake": 3, "edited": 1}


def test_bootstrap_is_seeded_and_clustered_by_image(tmp_path: Path) -> None:
    split = write_split(tmp_path / "s", [pointwise_record(i, "fake", BAD, 1 + i % 5) for i in range(10)])
    refs = tmp_path / "pw.jsonl"
    run_converter(split, "--out", refs)
    responses = [f"<score>{1 + (i * 3) % 5}</score>" for i in range(10)]
    preds = infer_lines(refs, responses, tmp_path / "p.jsonl")
    results = []
    for seed in ("1", "1", "2"):
        out = tmp_path / f"m{seed}.json"
        score_cli.main(["--predictions", str(preds), "--references", str(refs), "--out", str(out),
                        "--bootstrap", "200", "--seed", seed])
        results.append(json.loads(out.read_text()))
    assert results[0]["ci95"] == results[1]["ci95"] != results[2]["ci95"]
    lo, hi = results[0]["ci95"]["mae"]
    assert lo <= results[0]["metrics"]["mae"] <= hi
    # All records on one image: one cluster, so every replicate is the full sample and the interval is a point.
    rows = read_jsonl(refs)
    for row in rows:
        row["images"] = rows[0]["images"]
    write_jsonl(tmp_path / "one.jsonl", rows)
    preds = infer_lines(tmp_path / "one.jsonl", responses, tmp_path / "p1.jsonl")
    out = tmp_path / "one_m.json"
    score_cli.main(["--predictions", str(preds), "--references", str(tmp_path / "one.jsonl"), "--out", str(out),
                    "--bootstrap", "50"])
    one = json.loads(out.read_text())
    assert one["ci95"]["mae"] == [pytest.approx(one["metrics"]["mae"])] * 2


def test_score_reference_errors(tmp_path: Path) -> None:
    split = pointwise_split(tmp_path / "s", 2)
    refs = tmp_path / "pw.jsonl"
    run_converter(split, "--out", refs)
    preds = infer_lines(refs, ["<score>1</score>"] * 2, tmp_path / "p.jsonl")
    with pytest.raises(UserError, match=r"pw.jsonl:1: meta.task is 'dfj-pointwise'; --task dfj-detect reads"):
        score_cli.main(["--task", "dfj-detect", "--predictions", str(preds), "--references", str(refs)])
    rows = read_jsonl(refs)
    rows[1]["meta"]["score"] = 9
    write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UserError, match=r"bad.jsonl:2: meta.score must be null or one of 1, 2, 3, 4, 5"):
        score_cli.main(["--predictions", str(preds), "--references", str(tmp_path / "bad.jsonl")])
    pair = tmp_path / "pair.jsonl"
    run_converter(pairwise_split(tmp_path / "p", 1), "--both-orders", "--out", pair)
    write_jsonl(tmp_path / "twice.jsonl", read_jsonl(pair) * 2)
    twice = infer_lines(tmp_path / "twice.jsonl", ["A"] * 4, tmp_path / "t.jsonl")
    with pytest.raises(UserError, match="pair '1' in order AB occurs twice"):
        score_cli.main(["--predictions", str(twice), "--references", str(tmp_path / "twice.jsonl")])


# --- recipes: settings and the checks made before swift starts ----------------------------------------------------


def test_recipe_configs_hold_the_paper_settings() -> None:
    from recipes import lib

    env, point = lib.load_config("dfj_pointwise_lora")
    env2, pair = lib.load_config("dfj_pairwise_lora")
    assert env == env2 and env["MAX_PIXELS"] == "1003520" and env["MIN_PIXELS"] == "3136"
    assert (point["tuner_type"], point["lora_rank"], point["lora_alpha"], point["target_modules"]) == (
        "lora", 32, 64, "all-linear")
    assert (point["learning_rate"], point["num_train_epochs"], point["per_device_train_batch_size"],
            point["freeze_vit"]) == (1e-6, 2, 16, True)
    assert (point["max_length"], pair["max_length"]) == (4096, 2048)
    assert {k: v for k, v in point.items() if k != "max_length"} == {k: v for k, v in pair.items() if k != "max_length"}
    assert not {"model", "dataset", "output_dir", "deepspeed"} & set(point)


def test_recipes_fail_with_one_line_before_swift(tmp_path: Path) -> None:
    from common.swift import run_recipe

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")  # a model directory: infer.sh takes it as --model
    data = tmp_path / "in.jsonl"
    write_jsonl(data, [{"messages": [{"role": "user", "content": "x"}]}])
    cases = [
        ("dfj_pointwise_lora.sh", {"DATASET": str(tmp_path / "none.jsonl")}, "DATASET file not found"),
        ("dfj_pairwise_lora.sh", {"DATASET": str(data), "VAL_DATASET": str(tmp_path / "v.jsonl")},
         "VAL_DATASET file not found"),
        ("infer.sh", {"CKPT": str(base), "INPUT": str(tmp_path / "none.jsonl")}, "INPUT file not found"),
        ("infer.sh", {"CKPT": str(base), "INPUT": str(data), "RESULT_PATH": str(data),
                      "TRAIN_CONFIG": str(ROOT / "recipes/configs/dfj_pointwise_lora.yaml")},
         "RESULT_PATH is the input file itself"),
    ]
    for i, (script, env, message) in enumerate(cases):
        log = tmp_path / f"bad{i}.log"
        proc = run_recipe(ROOT / "recipes" / script, [], log=log, env=env, check=False)
        lines = log.read_text().strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (script, lines)
        assert lines[0].startswith(f"{script}: error: ") and message in lines[0], lines
    assert data.read_text()  # the input survived
