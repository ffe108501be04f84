"""eval/reward.py: P(REAL) at the verdict token from swift infer's logprobs, the trace found, the per-group summary,
and the command on a folder of real mp4 files (with an existing result file; the swift run is in
tests/recipes/test_reward_model.py)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from common.errors import UserError
from common.jsonl import read_jsonl, write_jsonl
from common.media import VideoInfo
from eval import reward as RW
from prompts.deeptrace import parse, question
from prompts.deeptrace_categories import load_category_map
from tests.support.judge_server import JudgeServer
from tests.support.media import write_mp4


def tok(text: str, logprob: float, top: list[tuple[str, float]] | None = None) -> dict:
    """One token of swift infer's `logprobs.content` (token, logprob, bytes, top_logprobs)."""
    entry = {"token": text, "logprob": logprob, "bytes": list(text.encode())}
    if top is not None:
        entry["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
    return entry


def logprobs(*tokens: dict) -> dict:
    return {"content": list(tokens)}


E = math.exp
CATEGORIES = load_category_map()


def test_both_verdicts_listed_normalised_with_bounds() -> None:
    lp = logprobs(tok("FAKE", -0.1, [("FAKE", -0.1), ("REAL", -2.5), ("The", -5.0)]), tok(".", -0.01, []))
    vp = RW.verdict_probability(lp, "fake")
    real, fake = E(-2.5), E(-0.1)
    rest = 1 - (E(-0.1) + E(-2.5) + E(-5.0))
    assert vp.status == "ok" and vp.token_index == 0
    assert vp.p_real == pytest.approx(real / (real + fake))
    assert (vp.low, vp.high) == (pytest.approx(real / (real + fake + rest)),
                                 pytest.approx((real + rest) / (real + fake + rest)))
    assert vp.low <= vp.p_real <= vp.high and vp.high - vp.low <= RW.DEFAULT_TOLERANCE
    assert vp.rest == pytest.approx(rest)


def test_word_pieces_count_for_their_word_and_the_chosen_token_is_always_listed() -> None:
    # REAL generated as "RE" + "AL"; "F" and "FA" begin FAKE; the sampled "RE" is not in the top list
    lp = logprobs(tok("RE", -0.7, [("FA", -1.2), ("F", -3.0), ("Real", -4.0)]), tok("AL", -0.01, []))
    vp = RW.verdict_probability(lp, "real", tolerance=1.0)
    real, fake = E(-0.7), E(-1.2) + E(-3.0)
    assert vp.p_real == pytest.approx(real / (real + fake))  # "Real" is neither word: part of the rest
    assert vp.mass_real == pytest.approx(real) and vp.mass_fake == pytest.approx(fake)


def test_one_word_missing_is_bounded_by_the_unlisted_mass() -> None:
    # a confident FAKE: REAL is not listed, but the listed tokens leave almost nothing unaccounted for
    confident = logprobs(tok(" FAKE", math.log(0.9995), [(" FAKE", math.log(0.9995)), (" The", math.log(0.0004))]))
    vp = RW.verdict_probability(confident, "fake")
    assert vp.status == "ok" and vp.p_real == 0.0 and vp.low == 0.0
    assert vp.high == pytest.approx(0.0001 / (0.9995 + 0.0001))
    # the same with a short top list: REAL could hold up to 30% -> undetermined, p_real null
    short = logprobs(tok("FAKE", math.log(0.7), [("FAKE", math.log(0.7))]))
    vp = RW.verdict_probability(short, "fake")
    assert vp.status == "undetermined" and vp.p_real is None
    assert (vp.low, vp.high) == (0.0, pytest.approx(0.3))
    assert RW.verdict_probability(short, "fake", tolerance=0.5).p_real == 0.0


def test_no_verdict_probability_is_ever_guessed() -> None:
    neither = logprobs(tok("REAL", -3.0, [("The", -0.1), ("A", -0.5)]))  # chosen REAL listed: not "neither"
    assert RW.verdict_probability(neither, "real", tolerance=1.0).status == "ok"
    none_listed = logprobs({"token": "REAL", "logprob": None, "bytes": list(b"REAL"),
                            "top_logprobs": [{"token": "The", "logprob": -0.1}]})
    vp = RW.verdict_probability(none_listed, "real")
    assert (vp.status, vp.p_real, vp.low, vp.high) == ("neither in top-k", None, 0.0, 1.0)
    glued = logprobs(tok("Answer", -0.1, []), tok(":FAKE", -0.1, [(":FAKE", -0.1)]))
    assert RW.verdict_probability(glued, "fake").status == "no verdict token"
    echoed = logprobs(tok("FAKE", -0.1, []), tok(" or", -0.1, []), tok(" REAL", -0.2, []), tok("?", -0.1, []))
    assert RW.verdict_probability(echoed, "real").status == "no verdict token"  # its first verdict word is FAKE
    assert RW.verdict_probability(logprobs(tok("real", -0.1, [])), "real").status == "no verdict token"
    assert RW.verdict_probability(None, "real").status == "no logprobs"
    assert RW.verdict_probability({"content": []}, "real").status == "no logprobs"
    assert RW.verdict_probability(logprobs(tok("Hmm", -0.1, [])), None).status == "unparseable"


def test_the_verdict_after_a_think_block_and_whole_word_tokens() -> None:
    lp = logprobs(tok("<think>", -0.1, []), tok("REAL", -0.3, [("REAL", -0.3)]), tok("?", -0.1, []),
                  tok("</think>", -0.1, []), tok("\n", -0.1, []), tok(" FAKE.", -0.05, [(" FAKE.", -0.05),
                                                                                       (" REALLY", -3.5),
                                                                                       (" REAL.", -4.0)]))
    vp = RW.verdict_probability(lp, "fake", tolerance=1.0)
    assert vp.token_index == 5
    assert vp.p_real == pytest.approx(E(-4.0) / (E(-4.0) + E(-0.05)))  # "REALLY" is not REAL
    assert RW.begins(b" REAL.", b"REAL") and RW.begins(b"RE", b"REAL") and not RW.begins(b"REALLY", b"REAL")
    assert not RW.begins(b" ", b"REAL") and not RW.begins(b"Real", b"REAL")


def test_trace_box_in_frame_ratios_categories_named() -> None:
    text = ("FAKE. The video is AI-generated. The unnatural part is at [16, 12, 48, 36] starting 1.5 seconds. "
            "The reason is because of object  merging and sudden blurring of the arm.")
    trace = RW.trace_of(parse(text), VideoInfo(64, 48, 4.0, 8), "pixels", CATEGORIES)
    assert trace == {"box": [0.25, 0.25, 0.75, 0.75], "box_pixels": [16.0, 12.0, 48.0, 36.0], "onset": 1.5,
                     "end": None, "explanation": "of object merging and sudden blurring of the arm.",
                     "categories": ["Sudden Blurring", "Object Merging"]}
    norm = RW.trace_of(parse(text.replace("[16, 12, 48, 36]", "[250, 250, 750, 750]")), None, "norm1000",
                       CATEGORIES)
    assert norm["box"] == [0.25, 0.25, 0.75, 0.75] and norm["box_pixels"] is None
    assert RW.trace_of(parse("REAL. The video is real."), None, "pixels", CATEGORIES) is None
    # the converters' category map, searched in the explanation
    assert RW.categories_named("A third hand appears and merges into the sleeve.", CATEGORIES) == [
        "Redundant Object", "Object Merging"]
    assert RW.categories_named("The hand has six fingers.", CATEGORIES) == []
    assert RW.categories_named(None, CATEGORIES) == []


def row(group: str, p: float | None, verdict: str | None, status: str = "ok", onset: float | None = None) -> dict:
    traces = [{"onset": onset, "categories": ["Object Merging"]}] if verdict == "fake" else []
    return {"group": group, "p_real": p, "verdict": verdict, "verdict_status": status, "traces": traces}


def test_summary_ranks_groups_by_mean_p_real_and_counts_the_rest() -> None:
    rows = [row("kling", 0.2, "fake", onset=1.0), row("kling", 0.4, "fake", onset=2.0), row("sora", 0.9, "real"),
            row("sora", None, "real", "undetermined"), row("pika", None, None, "unparseable")]
    summary = RW.summarise(rows)
    assert [s["group"] for s in summary] == ["sora", "kling", "pika", "(all)"]
    assert [s["rank"] for s in summary] == [1, 2, None, None]
    kling = summary[1]
    assert kling["p_real_mean"] == pytest.approx(0.3) and kling["p_real_std"] == pytest.approx(0.141421, abs=1e-6)
    assert (kling["judged_fake"], kling["fake_rate"], kling["mean_onset"]) == (2, 1.0, 1.5)
    assert kling["categories"] == {"Object Merging": 2}
    assert summary[0]["without_p_real"] == {"undetermined": 1} and summary[0]["with_p_real"] == 1
    total = summary[-1]
    assert (total["videos"], total["with_p_real"]) == (5, 3)
    assert total["without_p_real"] == {"undetermined": 1, "unparseable": 1}


# --- the command ---------------------------------------------------------------------------------------------------


def answer_logprobs(verdict: str, p_real: float) -> dict:
    word = "REAL" if verdict == "real" else "FAKE"
    lp_real, lp_fake = math.log(p_real * 0.999), math.log((1 - p_real) * 0.999)
    chosen = lp_real if verdict == "real" else lp_fake
    return logprobs(tok(word, chosen, [("REAL", lp_real), ("FAKE", lp_fake)]), tok(".", -0.01, []))


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    root = tmp_path / "generated"
    for i, name in enumerate(["kling/a.mp4", "kling/b.mp4", "sora/set1/c.mp4", "top.mp4"]):
        write_mp4(root / name, i, width=64, height=48)
    (root / "notes.txt").write_text("not a video")
    return root


def results_for(root: Path, answers: dict[str, tuple[str, str, float]]) -> list[dict]:
    out = []
    for name, (response, verdict, p) in answers.items():
        out.append({"response": response, "labels": None, "videos": [str((root / name).resolve())],
                    "logprobs": answer_logprobs(verdict, p)})
    return out


FAKE_ANSWER = ("FAKE. The video is AI-generated. The unnatural part is at [16, 12, 48, 36] starting 0.5 seconds. "
               "The reason is because of object merging.")


def test_command_from_a_folder_of_mp4s_to_jsonl_and_csv(clips: Path, tmp_path: Path, capsys) -> None:
    answers = {"kling/a.mp4": (FAKE_ANSWER, "fake", 0.1), "kling/b.mp4": (FAKE_ANSWER, "fake", 0.3),
               "sora/set1/c.mp4": ("REAL. The video is real. There is no unparseable part.", "real", 0.8),
               "top.mp4": ("I am not sure.", "real", 0.5)}
    preds = write_jsonl(tmp_path / "preds.jsonl", results_for(clips, answers)) and tmp_path / "preds.jsonl"
    out = tmp_path / "out"
    assert RW.main([str(clips), "--predictions", str(preds), "--out", str(out)]) == 0
    rows = {r["video"]: r for r in read_jsonl(out / "rewards.jsonl")}
    assert list(rows) == ["kling/a.mp4", "kling/b.mp4", "sora/set1/c.mp4", "top.mp4"]
    assert rows["kling/a.mp4"]["p_real"] == pytest.approx(0.1) and rows["kling/a.mp4"]["group"] == "kling"
    assert rows["kling/a.mp4"]["traces"][0]["box"] == [0.25, 0.25, 0.75, 0.75]
    assert rows["kling/a.mp4"]["traces"][0]["categories"] == ["Object Merging"]
    assert rows["sora/set1/c.mp4"]["group"] == "sora" and rows["sora/set1/c.mp4"]["p_real"] == pytest.approx(0.8)
    assert rows["top.mp4"]["group"] == "." and rows["top.mp4"]["p_real"] is None
    assert rows["top.mp4"]["verdict_status"] == "unparseable"
    summary = read_jsonl(out / "summary.jsonl")
    assert [(s["group"], s["rank"]) for s in summary] == [("sora", 1), ("kling", 2), (".", None), ("(all)", None)]
    assert summary[1]["p_real_mean"] == pytest.approx(0.2)
    with open(out / "rewards.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["video"] for r in table] == list(rows) and table[0]["box"] == "0.25 0.25 0.75 0.75"
    assert float(table[0]["p_real"]) == pytest.approx(0.1) and table[3]["p_real"] == ""
    with open(out / "summary.csv", newline="") as fh:
        assert [r["group"] for r in csv.DictReader(fh)] == ["sora", "kling", ".", "(all)"]
    assert len(read_jsonl(out / "predictions.jsonl")) == 4 and len(read_jsonl(out / "inputs.jsonl")) == 4
    assert "1. sora: p_real 0.8" in capsys.readouterr().out

    # a second run into the same folder replaces its own files; --group-depth 2 splits sora/set1
    RW.main([str(clips), "--predictions", str(preds), "--out", str(out), "--group-depth", "2"])
    assert {s["group"] for s in read_jsonl(out / "summary.jsonl")} == {"kling", "sora/set1", ".", "(all)"}


def test_command_refuses_bad_input(clips: Path, tmp_path: Path) -> None:
    answers = {"kling/a.mp4": (FAKE_ANSWER, "fake", 0.1), "kling/b.mp4": (FAKE_ANSWER, "fake", 0.3),
               "sora/set1/c.mp4": (FAKE_ANSWER, "fake", 0.3)}
    preds = tmp_path / "preds.jsonl"
    write_jsonl(preds, results_for(clips, answers))
    with pytest.raises(UserError, match=r"no result for 1 of 4 videos \(.*top.mp4\)"):
        RW.main([str(clips), "--predictions", str(preds), "--out", str(tmp_path / "o1")])
    answers["top.mp4"] = ("REAL.", "real", 0.9)
    rows = results_for(clips, answers)
    write_jsonl(preds, [{**r, "logprobs": None} for r in rows])
    with pytest.raises(UserError, match="no token logprobs in the results; run swift infer with --logprobs true"):
        RW.main([str(clips), "--predictions", str(preds), "--out", str(tmp_path / "o2")])
    write_jsonl(preds, rows + rows[:1])
    with pytest.raises(UserError, match=r"preds.jsonl:5: a second result for"):
        RW.main([str(clips), "--predictions", str(preds), "--out", str(tmp_path / "o3")])
    write_jsonl(preds, rows)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="--out .*mine: is not a report directory"):
        RW.main([str(clips), "--predictions", str(preds), "--out", str(mine)])
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    with pytest.raises(UserError, match=r"no .mp4 files found"):
        RW.main([str(mine), "--predictions", str(preds), "--out", str(tmp_path / "o4")])
    with pytest.raises(UserError, match="--base-url needs --model"):
        RW.main([str(clips), "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "o6")])
    with pytest.raises(UserError, match="swift infer flags after `--` need --ckpt"):
        RW.main([str(clips), "--predictions", str(preds), "--out", str(tmp_path / "o5"), "--", "--max_batch_size",
                 "2"])
    with pytest.raises(UserError, match="one of the arguments --ckpt --predictions --base-url is required"):
        RW.main([str(clips), "--out", str(tmp_path / "o6")])
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))  # nothing half-written
    assert json.loads(json.dumps(rows))  # (rows stayed plain JSON)


def test_command_with_an_openai_compatible_endpoint(clips: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    answer = {"reply": FAKE_ANSWER, "logprobs": answer_logprobs("fake", 0.25)}
    with JudgeServer(script=lambda request: answer) as server:
        argv = [str(clips), "--base-url", server.base_url, "--model", "detector", "--out", str(tmp_path / "out")]
        assert RW.main(argv) == 0
        bodies = [e["body"] for e in server.answered()]
        assert len(bodies) == 4
        assert RW.main(argv) == 0 and len(server.answered()) == 4  # the second run: every answer from the cache
    body = bodies[0]
    assert (body["model"], body["logprobs"], body["top_logprobs"], body["temperature"]) == ("detector", True, 20, 0.0)
    video, text = body["messages"][0]["content"]
    assert video["type"] == "video_url" and video["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert "<video>" + text["text"] == question("full")  # the clip takes the tag's place, as in training
    rows = read_jsonl(tmp_path / "out" / "rewards.jsonl")
    assert [r["p_real"] for r in rows] == [pytest.approx(0.25)] * 4 and {r["verdict"] for r in rows} == {"fake"}
    assert (tmp_path / "out.reward_cache.jsonl").is_file()
    with JudgeServer(script=lambda request: {"status": 500}) as server:
        with pytest.raises(UserError, match=r"endpoint: 4 of 4 requests failed .* re-run the same command"):
            RW.main([str(clips), "--base-url", server.base_url, "--model", "other", "--out", str(tmp_path / "o"),
                     "--retries", "0"])
    assert not (tmp_path / "o").exists()
