"""DeepfakeJudge on DFJ-Reason and record layouts: BLEU-3 (sacrebleu) and BERTScore (bert-score, with a tiny BERT
built locally) through eval/score.py --task dfj-reason, equal to the libraries' own results; the reasoning text;
judge prompts as upstream's inference reads them; dfj-detect records with a top-level `answer`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import UserError
from common.jsonl import read_jsonl
from converters import deepfakejudge_to_swift as conv
from prompts import deepfakejudge as P
from tests.eval.test_deepfakejudge import infer_lines, run_converter, run_score, write_split
from tests.support.tiny_bert import build_bert

ROOT = Path(__file__).resolve().parents[2]

REASONS = [  # (label, the reference's human reasoning)
    ("fake", "The hands have six fingers and the skin is too smooth."),
    ("real", "The lighting is consistent and the shadows agree."),
    ("edited", "The background edges are blurry around the face."),
    ("real", "Natural skin texture with fine pores."),
]


def reason_record(i: int, label: str, reasoning: str) -> dict:
    target = f"<reasoning>{reasoning}</reasoning> <answer>{label}</answer>"
    return {"messages": [{"role": "user", "content": "<image>Is this image real, fake or edited? Explain."},
                         {"role": "assistant", "content": target}],
            "images": [f"images/{i:03d}.png"]}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.fixture
def reason_refs(tmp_path: Path) -> Path:
    split = write_split(tmp_path / "dfj-bench" / "dfj-reason", [reason_record(i, *r) for i, r in enumerate(REASONS)])
    refs = tmp_path / "reason.jsonl"
    run_converter(split, "--out", refs)
    return refs


ANSWERS = ["<reasoning>The hands have six fingers.</reasoning> <answer>fake</answer>",
           "<think>hmm</think><reasoning>The shadows agree with the lighting.</reasoning> <answer>fake</answer>",
           "The background edges are blurry around the face. <answer>edited</answer>",
           ""]


# --- the reasoning text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, reasoning", [
    ("<reasoning> The hands. </reasoning> <answer>fake</answer>", "The hands."),
    ("<REASONING>a</reasoning><reasoning>b</reasoning>", "b"),  # the last tag
    ("<think>maybe</think>The hands. <answer>fake</answer>", "The hands."),
    ("Plain explanation.", "Plain explanation."),
    ("The hands. <answer>fake", "The hands."),  # an unclosed answer tag is cut too
    ("<think>unfinished", ""), (None, ""), ("", ""),
])
def test_reasoning_text(text, reasoning: str) -> None:
    assert P.reasoning_text(text) == reasoning


# --- BLEU-3 and BERTScore through the scorer --------------------------------------------------------------------


def test_bleu3_by_hand_and_as_sacrebleu() -> None:
    from eval import text_metrics as T

    # 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, no brevity penalty: (5/6 * 3/5 * 1/4) ** (1/3) = 0.125 ** (1/3) = 0.5
    corpus, sentence, _ = T.bleu3(["the cat sat on the mat"], ["the cat is on the mat"])
    assert corpus == pytest.approx(50.0) and sentence == [pytest.approx(50.0)]
    assert T.bleu3(["", "x y z"], ["a b", "x y z"]).sentence == [0.0, pytest.approx(100.0)]


def test_dfj_reason_metrics_equal_the_libraries(tmp_path: Path, reason_refs: Path, tiny_bert: Path) -> None:
    import bert_score
    from sacrebleu.metrics import BLEU

    result = run_score(tmp_path, reason_refs, ANSWERS, "--bertscore-model", str(tiny_bert), "--bertscore-layers", "2")
    assert result["task"] == "dfj-reason"  # from meta.task: the registry knows it
    m, reasoning = result["metrics"], result["reasoning"]
    hyps = ["The hands have six fingers.", "The shadows agree with the lighting.",
            "The background edges are blurry around the face.", ""]
    refs = [r for _, r in REASONS]
    assert BLEU(max_ngram_order=3).corpus_score(hyps, [refs]).score == pytest.approx(m["bleu3"], abs=1e-6)
    sentence = BLEU(max_ngram_order=3, effective_order=True)
    assert m["bleu3_sentence"] == pytest.approx(sum(sentence.sentence_score(h, [r]).score for h, r in
                                                    zip(hyps, refs, strict=True)) / 4, abs=1e-6)
    # bert-score on the three non-empty pairs; the empty answer scores 0 (bert-score cannot embed an empty text here)
    p, r, f = bert_score.score(hyps[:3], refs[:3], model_type=str(tiny_bert), num_layers=2)
    assert m["bertscore_f1"] == pytest.approx(float(f.sum()) / 4, abs=1e-6)
    assert m["bertscore_precision"] == pytest.approx(float(p.sum()) / 4, abs=1e-6)
    assert m["bertscore_recall"] == pytest.approx(float(r.sum()) / 4, abs=1e-6)
    assert 0 < m["bertscore_f1"] < 1 and m["bleu3"] > 0
    assert reasoning["n"] == 4 and reasoning["empty_answers"] == 1 and reasoning["without_reference"] == 0
    assert reasoning["bertscore"] == {"model": str(tiny_bert), "layers": 2, "rescale": False, "baseline": None,
                                      "idf": False}
    assert reasoning["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0")
    # the detection half is dfj-detect's: truth fake real edited real; answers fake fake edited (unparseable)
    assert m["accuracy"] == pytest.approx(100 * 2 / 3) and result["counts"]["unparseable"] == 1
    assert result["strict"]["bertscore_f1"] == m["bertscore_f1"] and result["strict"]["accuracy"] == 50.0

    # rescaled with a baseline file (bert-score's layout: one row per layer, columns LAYER,P,R,F)
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.2,0.2,0.2\n2,0.3,0.25,0.35\n")
    scaled = run_score(tmp_path, reason_refs, ANSWERS, "--bertscore-model", str(tiny_bert), "--bertscore-layers",
                       "2", "--bertscore-rescale", "--bertscore-baseline", str(baseline), "--bertscore-batch-size",
                       "2")
    p, r, f = bert_score.score(hyps[:3], refs[:3], model_type=str(tiny_bert), num_layers=2, lang="en",
                               rescale_with_baseline=True, baseline_path=str(baseline))
    assert scaled["metrics"]["bertscore_f1"] == pytest.approx(float(f.sum()) / 4, abs=1e-6)
    assert float(f[0]) == pytest.approx((float(bert_score.score(hyps[:1], refs[:1], model_type=str(tiny_bert),
                                                                num_layers=2)[2][0]) - 0.35) / 0.65, abs=1e-6)


def test_bertscore_settings_errors(tmp_path: Path, reason_refs: Path, tiny_bert: Path) -> None:
    def fails(message: str, *flags: str) -> None:
        with pytest.raises(UserError, match=message):
            run_score(tmp_path, reason_refs, ANSWERS, *flags)

    fails(r"--bertscore-model .*tiny-bert: bert-score has no tuned layer for this model \(it has 2 layers\); pass "
          r"--bertscore-layers N", "--bertscore-model", str(tiny_bert))
    fails(r"--bertscore-rescale: no baseline file for .*; .* pass --bertscore-baseline FILE", "--bertscore-model",
          str(tiny_bert), "--bertscore-layers", "2", "--bertscore-rescale")
    fails("--bertscore-baseline applies with --bertscore-rescale", "--bertscore-model", str(tiny_bert),
          "--bertscore-layers", "2", "--bertscore-baseline", str(tmp_path / "b.tsv"))
    fails(r"cannot load the BERTScore model '/no/such/model'.*--no-bertscore", "--bertscore-model", "/no/such/model",
          "--bertscore-layers", "2")
    skipped = run_score(tmp_path, reason_refs, ANSWERS, "--no-bertscore")  # no model is loaded
    assert skipped["metrics"]["bleu3"] > 0 and "bertscore_f1" not in skipped["metrics"]
    assert skipped["reasoning"]["bertscore"] is None


def test_dfj_detect_scoring_of_reason_references_is_unchanged(tmp_path: Path, reason_refs: Path) -> None:
    result = run_score(tmp_path, reason_refs, ANSWERS, "--task", "dfj-detect")
    assert result["task"] == "dfj-detect" and "bleu3" not in result["metrics"] and "reasoning" not in result


# --- judge prompts as upstream's inference reads them -------------------------------------------------------------


def test_prompt_newlines() -> None:
    response = "<reasoning>Line one.\r\nLine two.</reasoning> <answer>real</answer>"  # a response's own CRLF stays
    stored = P.pointwise_prompt("real", response)
    lf = P.pointwise_prompt("real", response, newline="lf")
    assert stored == P.pointwise_prompt("real", response, newline="crlf")
    with open(ROOT / "prompts/deepfakejudge/pointwise_prompt.txt", encoding="utf-8") as fh:  # upstream's reading
        upstream = fh.read()
    assert lf == upstream.replace("{ground_truth_label}", "real").replace("{candidate_response}", response)
    assert lf.count("\r\n") == 1 and stored.count("\r\n") == upstream.count("\n") + 1
    assert P.pairwise_prompt("fake", "a", "b", newline="lf") == P.pairwise_prompt("fake", "a", "b").replace(
        "\r\n", "\n")
    assert P.match_pairwise(P.pairwise_prompt("fake", "a", "b", newline="lf"))["response_b"] == "b"
    with pytest.raises(ValueError, match="newline"):
        P.pointwise_prompt("real", "x", newline="\n")


def test_prompt_newlines_flag_belongs_to_build(tmp_path: Path) -> None:
    split = write_split(tmp_path / "dfj-reason", [reason_record(0, "fake", "x")])
    with pytest.raises(UserError, match="--prompt-newlines belongs to --build"):
        conv.main([str(split), "--prompt-newlines", "crlf", "--out", str(tmp_path / "o.jsonl")])


# --- dfj-detect records with a top-level `answer` ------------------------------------------------------------------


def test_top_level_answer_is_the_label(tmp_path: Path) -> None:
    records = [
        {**reason_record(0, "fake", "Six fingers."), "answer": "fake"},  # agrees with the target
        {**reason_record(1, "edited", "Blurry edges."), "answer": "Fake"},  # edited is fake: agrees; target kept
        {"messages": [{"role": "user", "content": "<image>Is this image real or fake?"}],  # question only
         "images": ["./images/002.png"], "answer": "real"},
        {"messages": [{"role": "user", "content": "Is this image real or fake?"}], "images": ["images/003.png"],
         "answer": " fake "},
    ]
    split = write_split(tmp_path / "DeepfakeJudge" / "dfj-detect", records)
    rows = run_converter(split, "--out", tmp_path / "d.jsonl")
    assert [(r["meta"]["task"], r["meta"]["label"]) for r in rows] == [
        ("dfj-detect", "fake"), ("dfj-detect", "edited"), ("dfj-detect", "real"), ("dfj-detect", "fake")]
    assert [len(r["messages"]) for r in rows] == [2, 2, 1, 1]
    assert rows[2]["images"] == [str((split / "images" / "002.png").resolve())]
    assert rows[3]["messages"][0]["content"] == "<image>Is this image real or fake?"  # tag added, as for any record
    assert "extra" not in rows[0]["meta"]
    # question-only rows go through swift infer and are scored like any dfj-detect reference
    preds = infer_lines(tmp_path / "d.jsonl", ["<answer>fake</answer>", "<answer>fake</answer>",
                                               "<answer>fake</answer>", "<answer>fake</answer>"],
                        tmp_path / "p.jsonl")
    out = tmp_path / "m.json"
    from eval import score as score_cli

    assert score_cli.main(["--predictions", str(preds), "--references", str(tmp_path / "d.jsonl"), "--out",
                           str(out), "--bootstrap", "0"]) == 0
    assert json.loads(out.read_text())["metrics"]["accuracy"] == 75.0


@pytest.mark.parametrize("record, message", [
    ({**reason_record(0, "real", "Even light."), "answer": "fake"},
     r"data.jsonl:1: 'answer' is 'fake' but the assistant target says 'real'"),
    ({**reason_record(0, "real", "Even light."), "answer": "maybe"},
     r"data.jsonl:1: 'answer' must be real, fake or edited \(got 'maybe'\)"),
    ({**reason_record(0, "real", "Even light."), "answer": 1}, r"'answer' must be real, fake or edited \(got 1\)"),
    ({"messages": [{"role": "user", "content": "<image>Real?"}], "images": ["images/000.png"]},
     r"the last message must be the assistant's target; this record has none"),
])
def test_top_level_answer_errors(tmp_path: Path, record: dict, message: str) -> None:
    split = write_split(tmp_path / "dfj-detect", [record])
    with pytest.raises(UserError, match=message):
        conv.main([str(split), "--out", str(tmp_path / "o.jsonl")])
    assert not (tmp_path / "o.jsonl").exists()


def test_top_level_answer_on_a_judge_record_is_an_error(tmp_path: Path) -> None:
    from tests.eval.test_deepfakejudge import BAD, pointwise_record

    split = write_split(tmp_path / "s", [{**pointwise_record(0, "fake", BAD, 2), "answer": "fake"}])
    with pytest.raises(UserError, match="a top-level 'answer' is the label of a dfj-detect or dfj-reason record; "
                                        "this record is dfj-pointwise"):
        conv.main([str(split), "--out", str(tmp_path / "o.jsonl")])
    assert read_jsonl(split / "data.jsonl")[0]["answer"] == "fake"  # the input is untouched
