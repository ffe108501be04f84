"""GRPO rewards (eval/rl_rewards.py): hand-computed cases, equality with the scorers' own per-sample values, and the
DeepfakeJudge reasoning reward against a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.errors import UserError
from common.join import Pair
from eval import deeptrace as D
from eval import fakeclue as F
from eval import rl_rewards as R
from eval.tasks import ScoreContext
from prompts import deepfakejudge as dfj
from prompts.deeptrace import REAL_ANSWER, fake_answer
from tests.support.eval_samples import reference
from tests.support.judge_server import JudgeServer
from tests.support.media import write_mp4, write_png

# A fake trace in a 100 x 50 clip of 4 s: box [10, 10, 30, 30] px = (0.1, 0.2, 0.3, 0.6) in frame ratios, onset 1 s.
FAKE_META = reference("v1", "fake", bbox=[10, 10, 30, 30], start=1.0, explanation="a hand melts.", width=100,
                      height=50, duration=4.0)["meta"]
REAL_META = reference("r1", "real", width=100, height=50, duration=4.0)["meta"]


def fake(box, start, explanation="a hand melts.", variant="full") -> str:
    return fake_answer(box, start, explanation, variant)


# (completion, expected format, verdict, grounding, onset) on FAKE_META, by hand
FAKE_CASES = [
    (fake([10, 10, 30, 30], 1.0), 1.0, 1.0, 1.0, 1.0),  # the reference answer itself
    # box (0.2, 0.2, 0.4, 0.6): intersection 0.1 x 0.4 = 0.04, union 0.08 + 0.08 - 0.04 -> IoU 1/3; |2 - 1| / 4
    (fake([20, 10, 40, 30], 2.0), 1.0, 1.0, 1 / 3, 0.75),
    (fake([60, 30, 90, 50], 9.0), 1.0, 1.0, 0.0, 0.0),  # disjoint box; 8 s away is capped at the whole clip
    (REAL_ANSWER, 1.0, 0.0, 0.0, 0.0),  # REAL on a fake video: no box, no onset (the scorer's worst case)
    ("FAKE. The video is AI-generated.", 0.0, 1.0, 0.0, 0.0),  # right verdict, nothing else: not the format
    ("FAKE. The video is AI-generated. The unnatural part is at [10, 10, 30, 30].", 0.0, 1.0, 1.0, 0.0),
    ("I cannot tell.", 0.0, 0.0, 0.0, 0.0),  # unparseable: 0 everywhere
    ("", 0.0, 0.0, 0.0, 0.0),
    (None, 0.0, 0.0, 0.0, 0.0),  # not even a string: still 0, never an exception
]


@pytest.mark.parametrize(("completion", "fmt", "verdict", "grounding", "onset"), FAKE_CASES)
def test_deeptrace_rewards_by_hand_on_a_fake_video(completion, fmt, verdict, grounding, onset) -> None:
    got = R.deeptrace_terms(completion, FAKE_META, ["/data/videos/v1.mp4"])
    assert got == pytest.approx({"format": fmt, "verdict": verdict, "grounding": grounding, "onset": onset})


def test_real_videos_are_scored_on_their_verdict_only() -> None:
    only = {"format": None, "grounding": None, "onset": None}
    assert R.deeptrace_terms(REAL_ANSWER, REAL_META) == {"verdict": 1.0, **only}
    assert R.deeptrace_terms(fake([10, 10, 30, 30], 1.0), REAL_META) == {"verdict": 0.0, **only}
    assert R.deeptrace_terms("no idea", REAL_META) == {"verdict": 0.0, **only}


def test_variants_set_the_format_and_whether_onset_applies() -> None:
    meta = {**FAKE_META, "variant": "no_time"}
    answer = fake([10, 10, 30, 30], 1.0, variant="no_time")  # box and explanation, no time
    assert R.deeptrace_terms(answer, meta) == {"format": 1.0, "verdict": 1.0, "grounding": 1.0, "onset": None}
    meta = {**FAKE_META, "variant": "no_explanation"}
    answer = fake([20, 10, 40, 30], 2.0, variant="no_explanation")
    assert R.deeptrace_terms(answer, meta) == pytest.approx({"format": 1.0, "verdict": 1.0, "grounding": 1 / 3,
                                                             "onset": 0.75})
    # a full-variant sample wants the explanation: the no_explanation answer is not its format
    assert R.deeptrace_terms(answer, FAKE_META)["format"] == 0.0
    meta = {**FAKE_META, "variant": "no_time_no_explanation"}
    assert R.deeptrace_terms(fake([10, 10, 30, 30], 0, variant="no_time_no_explanation"), meta)["format"] == 1.0


def test_other_tasks_get_none_and_a_missing_meta_is_a_data_error() -> None:
    fakeclue_meta = {"task": "fakeclue", "label": "fake", "answer": "This is a fake image."}
    assert R.deeptrace_terms(REAL_ANSWER, fakeclue_meta) == dict.fromkeys(R.DEEPTRACE_TERMS)
    assert R.fakeclue_terms("This is a fake image.", FAKE_META) == dict.fromkeys(R.FAKECLUE_TERMS)
    with pytest.raises(UserError, match=r"GRPO sample \(/v/x.mp4\): no converter 'meta'"):
        R.deeptrace_terms(REAL_ANSWER, None, ["/v/x.mp4"])
    with pytest.raises(UserError, match="meta.label must be"):
        R.deeptrace_terms(REAL_ANSWER, {**FAKE_META, "label": "maybe"})


# --- equal to the scorer -----------------------------------------------------------------------------------------


def test_deeptrace_rewards_equal_the_scorers_per_sample_rows() -> None:
    """The scorer (eval/deeptrace.py `score`, judge off) on (completion, SFT row) pairs; the rewards from the same
    completions with the row's meta and answer (`solution`), as GRPO passes them."""
    records = [reference("v1", "fake", bbox=[100, 100, 300, 300], start=1.0, explanation="The dog has five legs."),
               reference("v2", "fake", bbox=[0, 0, 640, 360], start=0.5, duration=3.0, variant="no_time"),
               reference("v3", "fake", bbox=[10.4, 20.6, 110.5, 219.5], start=3.25, answer_format="norm1000"),
               reference("r1", "real")]
    completions = [fake([120, 90, 280, 330], 1.4), fake([0, 0, 100, 100], 0.0), fake([8, 29, 86, 305], 2.0),
                   REAL_ANSWER, "FAKE. The unnatural part is at (10, 20, 30, 40) from 1.0 to 2.0 seconds.",
                   "REAL. The video is real.", "The video looks fake: the dog has five legs (starting at 0:01).",
                   "<think>Is it REAL?</think>FAKE. The video is AI-generated. The unnatural part is at [8, 29, 86, "
                   "305] starting 3.3 seconds.", "Sorry, I can't determine it.", fake([2000, 2000, 2400, 2400], 100.0)]
    pairs = [Pair(i, {"response": c}, i, r) for i, (r, c) in enumerate((r, c) for r in records for c in completions)]
    scored = D.score(pairs, SimpleNamespace(bbox_format=None, compat=False, bootstrap=0, seed=0),
                     context=ScoreContext("p", "r"))
    assert len(scored.samples) == len(pairs)
    for pair, (_, row) in zip(pairs, scored.samples, strict=True):  # (Reference, per-sample row)
        meta = pair.ref["meta"]
        got = R.deeptrace_terms(pair.pred["response"], meta, pair.ref["videos"], pair.ref["messages"][-1]["content"])
        assert got["verdict"] == row.correct
        if meta["label"] == "fake":
            assert got["grounding"] == row.iou
            assert got["onset"] == (1.0 - row.tdist if meta["variant"] in ("full", "no_explanation") else None)
        else:
            assert got["grounding"] is None and got["onset"] is None and row.iou is None


def test_the_reference_is_what_the_model_was_trained_on() -> None:
    """With fractional meta numbers the trained answer says the rounded ones; the scorer scores against those, and so
    does the reward when GRPO passes the answer as `solution` (the recipes do)."""
    record = reference("v1", "fake", bbox=[10.4, 10.6, 30.5, 29.5], start=1.04, explanation="x.", width=100,
                       height=50, duration=4.0)
    answer = record["messages"][-1]["content"]
    assert "[10, 11, 31, 30] starting 1.0 seconds" in answer
    exact = R.deeptrace_terms(answer, record["meta"], record["videos"], answer)
    assert (exact["grounding"], exact["onset"]) == (1.0, 1.0)
    from_meta = R.deeptrace_terms(answer, record["meta"], record["videos"])
    assert from_meta["grounding"] < 1.0 and from_meta["onset"] < 1.0


# --- FakeClue ----------------------------------------------------------------------------------------------------

FAKECLUE_META = {"task": "fakeclue", "label": "fake", "cate": "human",
                 "answer": "This is a fake image. The hands have six fingers."}


def test_fakeclue_rewards_by_hand() -> None:
    # stemmed tokens: this is a fake imag the hand have six finger (10) / this is a fake imag the hand look odd (9);
    # LCS 7 -> P 7/9, R 7/10, F = 2PR / (P + R) = 98/133
    got = R.fakeclue_terms("This is a fake image. The hands look odd.", FAKECLUE_META)
    assert got == pytest.approx({"verdict": 1.0, "rouge_l": 98 / 133})
    assert R.fakeclue_terms("This is a real image.", FAKECLUE_META)["verdict"] == 0.0
    assert R.fakeclue_terms("I can't say.", FAKECLUE_META) == {"verdict": 0.0, "rouge_l": 0.0}
    assert R.fakeclue_terms(None, FAKECLUE_META) == {"verdict": 0.0, "rouge_l": 0.0}
    assert R.fakeclue_terms(FAKECLUE_META["answer"], FAKECLUE_META) == {"verdict": 1.0, "rouge_l": 1.0}


def test_fakeclue_rewards_equal_the_scorer() -> None:
    answers = ["This is a fake image. The hands look odd.", "This is a real image. Natural light.", "",
               "It is not real: the skin is too smooth.", "unrealistic lighting", FAKECLUE_META["answer"],
               "<think>real?</think>This is a fake image.", "I can't tell whether it is real."]
    pairs = []
    for label in ("fake", "real"):
        meta = {**FAKECLUE_META, "label": label}
        ref = {"messages": [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                            {"role": "assistant", "content": meta["answer"]}], "images": ["/x.png"], "meta": meta}
        pairs += [Pair(len(pairs), {"response": a}, len(pairs), ref) for a in answers]
    args = SimpleNamespace(compat=False, seed=0, no_rouge=False, no_css=True, bootstrap=0)
    scored = F.score(pairs, args, context=ScoreContext("p", "r"))
    for pair, (_, row) in zip(pairs, scored.samples, strict=True):  # (Reference, per-sample row)
        got = R.fakeclue_terms(pair.pred["response"], pair.ref["meta"], solution=pair.ref["messages"][-1]["content"])
        assert got == {"verdict": 1.0 if row["correct"] else 0.0, "rouge_l": row["rouge_l"]}


# --- the DeepfakeJudge reasoning reward --------------------------------------------------------------------------


@pytest.fixture
def judge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    for name in R.ReasoningJudge.ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)


def reply(score: int | str) -> dict:
    return {"reply": f"<reasoning>checked</reasoning>\n<score>{score}</score>"}


def test_judge_reward_scores_sends_media_and_caches(judge_env, tmp_path: Path, monkeypatch) -> None:
    png, mp4 = write_png(tmp_path / "img.png", 1), write_mp4(tmp_path / "clip.mp4", 2, frames=8, fps=4)
    scores = {"good reasoning": 5, "fair reasoning": 3, "weak reasoning": 1}

    def script(request):
        for text, score in scores.items():
            if text in request["prompt"]:
                return reply(score)
        return {"reply": "I will not grade this."}  # unparseable twice -> neutral

    with JudgeServer(script=script) as server:
        monkeypatch.setenv("DFJ_JUDGE_BASE_URL", server.base_url)
        monkeypatch.setenv("DFJ_JUDGE_MODEL", "dfj")
        judge = R.ReasoningJudge.from_env(tmp_path / "out")
        completions = ["good reasoning", "fair reasoning", "weak reasoning", "???", "good reasoning"]
        metas = [{"task": "fakeclue", "label": "fake"}, {"task": "deeptrace", "label": "real"},
                 {"label": "edited"}, {"label": "fake"}, {"label": "unknown"}]
        images = [[str(png)], None, [{"path": str(png), "bytes": None}], [str(png)], [str(png)]]
        videos = [None, [str(mp4)], None, None, None]
        got = judge.score(completions, metas, images, videos)
        assert got == [1.0, 0.5, 0.0, R.NEUTRAL, None]
        assert judge.counts == {"judged": 3, "unparseable": 1, "not_applicable": 1}
        answered = server.answered()
        assert len(answered) == 5  # 3 judged + the unparseable one asked twice
        def parts_of(prompt: str) -> list[dict]:  # the request whose last text part is `prompt`
            (body,) = [e["body"] for e in answered if e["body"]["messages"][0]["content"][-1]["text"] == prompt]
            return body["messages"][0]["content"]

        # the judge's own prompt, filled (with LF line endings, as upstream's inference reads it), after the media
        parts = parts_of(dfj.pointwise_prompt("fake", "good reasoning", newline="lf"))
        assert [p["type"] for p in parts] == ["image_url", "text"]
        assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
        parts = parts_of(dfj.pointwise_prompt("real", "fair reasoning", newline="lf"))
        texts = [p["text"] for p in parts if p["type"] == "text"]
        assert sum(p["type"] == "image_url" for p in parts) == 2  # 2 s clip at 1 fps, at most 4 frames
        assert texts[:2] == ["Time 0.0s:", "Time 1.0s:"]
        stats = json.loads((tmp_path / "out" / "dfj_reasoning_stats.json").read_text())
        assert stats["neutral"] == 1 and stats["completions"]["unparseable"] == 1

        # a new judge on the same output directory answers from the cache: no new request
        again = R.ReasoningJudge.from_env(tmp_path / "out").score(completions, metas, images, videos)
        assert again == got and len(server.answered()) == 5


def test_judge_reward_failures_are_neutral_and_counted(judge_env, tmp_path: Path, monkeypatch) -> None:
    with JudgeServer(script=lambda request: {"status": 500}) as server:
        monkeypatch.setenv("DFJ_JUDGE_BASE_URL", server.base_url)
        monkeypatch.setenv("DFJ_JUDGE_MODEL", "dfj")
        monkeypatch.setenv("DFJ_JUDGE_RETRIES", "0")
        judge = R.ReasoningJudge.from_env(tmp_path)
        assert judge.score(["a", "b"], [{"label": "fake"}, {"label": "real"}]) == [R.NEUTRAL, R.NEUTRAL]
        assert judge.counts["failed"] == 2 and judge.summary()["neutral"] == 2
    with JudgeServer(script=lambda request: {"status": 404}) as server:  # refused: the client stops, never raises
        monkeypatch.setenv("DFJ_JUDGE_BASE_URL", server.base_url)
        judge = R.ReasoningJudge.from_env(tmp_path / "404")
        assert judge.score(["a"], [{"label": "fake"}]) == [R.NEUTRAL]
        assert judge.score(["b"], [{"label": "fake"}]) == [R.NEUTRAL]  # and the next batch tries again
        assert judge.counts["failed"] == 2 and len(server.log) == 2
    missing = tmp_path / "missing.png"
    judge = R.ReasoningJudge("http://127.0.0.1:9/v1", "dfj", stats_path=tmp_path / "stats.json")
    assert judge.score(["a"], [{"label": "fake"}], [[str(missing)]]) == [R.NEUTRAL]
    assert judge.counts["media_missing"] == 1
    assert json.loads((tmp_path / "stats.json").read_text())["neutral"] == 1


def test_judge_reward_settings_are_checked_at_start(judge_env, monkeypatch) -> None:
    with pytest.raises(ValueError, match="needs DFJ_JUDGE_BASE_URL and DFJ_JUDGE_MODEL"):
        R.ReasoningJudge.from_env()
    monkeypatch.setenv("DFJ_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DFJ_JUDGE_MODEL", "dfj")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="needs OPENAI_API_KEY"):
        R.ReasoningJudge.from_env()


def test_score_to_reward() -> None:
    assert [R.score_to_reward(s) for s in dfj.SCORES] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_judge_reward_asks_what_the_judge_input_builder_writes(judge_env, tmp_path: Path, monkeypatch) -> None:
    """Same inputs, same judge prompt: the reward's request text equals the judge input that
    converters/deepfakejudge_to_swift.py --build pointwise writes for the same generation, after its image tag."""
    from converters.deepfakejudge_to_swift import main as build

    png = write_png(tmp_path / "img.png", 3)
    completion = "<reasoning>The hands have six fingers.</reasoning> <answer>fake</answer>"
    ref = {"messages": [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                        {"role": "assistant", "content": "This is a fake image."}], "images": [str(png)],
           "meta": {"task": "fakeclue", "label": "fake", "answer": "This is a fake image."}}
    (tmp_path / "refs.jsonl").write_text(json.dumps(ref) + "\n")
    (tmp_path / "preds.jsonl").write_text(json.dumps({"response": completion, "labels": "This is a fake image.",
                                                      "images": [{"path": str(png), "bytes": None}]}) + "\n")
    build(["--build", "pointwise", "--candidates", str(tmp_path / "preds.jsonl"), "--references",
           str(tmp_path / "refs.jsonl"), "--out", str(tmp_path / "judge_in.jsonl"), "-q"])
    (judge_input,) = [json.loads(line) for line in (tmp_path / "judge_in.jsonl").read_text().splitlines()]
    content = judge_input["messages"][0]["content"]
    assert content.startswith(dfj.IMAGE_TAG) and completion in content
    with JudgeServer(script=lambda request: reply(4)) as server:
        monkeypatch.setenv("DFJ_JUDGE_BASE_URL", server.base_url)
        monkeypatch.setenv("DFJ_JUDGE_MODEL", "dfj")
        judge = R.ReasoningJudge.from_env()
        assert judge.score([completion], [ref["meta"]], [[str(png)]]) == [0.75]
        (request,) = server.answered()
    image, text = request["body"]["messages"][0]["content"]
    assert image["type"] == "image_url"
    assert text["text"] == content[len(dfj.IMAGE_TAG):]
    assert dfj.parse_score(reply(4)["reply"]).value == 4  # the dfj-pointwise scorer's reading of the same reply
