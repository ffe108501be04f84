"""`python eval/score.py` end to end from a foreign cwd: metrics by hand, per-video protocol, --compat, box
conventions, one-line errors, and a judging run killed part-way then resumed. The CLI runs in the test process
(tests/support/cli.py) except where only a process shows the contract: one line and exit code 2, a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eval import score
from prompts.deeptrace import fake_answer
from tests.support.cli import KeyedCli
from tests.support.eval_samples import prediction, reference, standard_set, write
from tests.support.judge_server import JudgeServer, rule_judge

ROOT = Path(__file__).resolve().parents[2]
SCORE = ROOT / "eval" / "score.py"
SECRET = "sk-test-NEVER-WRITTEN-93c2"


CLI = KeyedCli(score.main, SCORE, SECRET)  # `run` in the test process; `run_process` for a real process
environment, run, run_process = CLI.environment, CLI.run, CLI.run_process


def files(tmp_path, refs, responses=None):
    preds = [prediction(r, None if responses is None else responses[i]) for i, r in enumerate(refs)]
    return write(tmp_path / "refs.jsonl", refs), write(tmp_path / "preds.jsonl", preds)


def assert_no_secret(*texts_or_paths):
    for item in texts_or_paths:
        text = item.read_text() if isinstance(item, Path) else item
        assert SECRET not in text


def test_perfect_predictions_score_100_with_the_judge(tmp_path):
    refs, preds = files(tmp_path, standard_set())
    with JudgeServer() as server:
        proc = run(["--task", "deeptrace", "--predictions", preds, "--references", refs, "--judge-base-url",
                    server.base_url, "--out", tmp_path / "m.json", "--bootstrap", "100"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "m.json").read_text())
    m = result["metrics"]
    assert (m["overall"], m["accuracy"], m["fake_accuracy"], m["real_accuracy"], m["explanation"], m["bbox_iou"],
            m["bbox_distance"], m["time_distance"]) == (100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 0.0, 0.0)
    assert m["time_iou"] is None  # the SFT format states no end time
    assert result["per_video"]["metrics"]["overall"] == 100.0
    assert {k: result["counts"][k] for k in ("n", "fake", "real", "explained", "unparseable", "judged")} == {
        "n": 12, "fake": 8, "real": 4, "explained": 7, "unparseable": 0, "judged": 7}
    assert result["task"] == "deeptrace" and result["join"]["unverified"] == 0
    assert result["ci95"]["overall"] == [100.0, 100.0]
    assert set(result["by_category"]) >= {"object distortion", "object merging", "(none)"}
    assert set(result["by_source"]) == {"Kling 1.0", "Pika 1.5", "Sora", "Gen-3", "LLaVA-Video-178K"}
    assert "| Overall ↑ | 100.0 | 100.0–100.0 | 100.0 |" in proc.stdout
    assert len(server.log) == 7 and {e["auth"] for e in server.log} == {f"Bearer {SECRET}"}
    cache = tmp_path / "preds.judge.jsonl"  # default cache location: beside the predictions
    assert len(cache.read_text().splitlines()) == 7
    assert_no_secret(proc.stdout, proc.stderr, cache, tmp_path / "m.json")


def test_metrics_by_hand_end_to_end(tmp_path):
    refs = [
        reference("a", "fake", bbox=[0, 0, 640, 360], start=1.0, explanation="The dog has five legs."),
        reference("b", "fake", bbox=[640, 360, 1280, 720], start=2.0, explanation="The cat merges with the sofa."),
        reference("c", "fake", bbox=[0, 0, 1280, 720], start=0.0, duration=4.0),
        reference("r1", "real"),
        reference("r2", "real"),
    ]
    responses = [
        fake_answer([0, 0, 320, 360], 2.0, "The dog has five legs."),  # IoU 0.5, dist 0.125/√2, time 0.2, judge 1
        "REAL. The video is real. There is no unnatural part.",  # worst case everywhere; explanation 0, no call
        "FAKE <coordinates>[0, 0, 1280, 720]</coordinates> <start_time>6 s</start_time>",  # IoU 1, time capped at 1
        "REAL",
        "It could be REAL or FAKE.",  # unparseable: wrong
    ]
    refs_path, preds_path = files(tmp_path, refs, responses)
    with JudgeServer() as server:
        proc = run(["--predictions", preds_path, "--references", refs_path, "--judge-base-url", server.base_url,
                    "--bootstrap", "0", "--out", "m.json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "m.json").read_text())
    m = result["metrics"]
    expected = {"accuracy": 60.0, "fake_accuracy": 200 / 3, "real_accuracy": 50.0, "explanation": 50.0,
                "bbox_iou": 50.0, "bbox_distance": 100 * (0.125 / 2**0.5 + 1) / 3, "time_distance": 100 * 2.2 / 3}
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert m["overall"] == pytest.approx((60 + 50 + 50 + 100 - 100 * 2.2 / 3) / 4)
    assert result["counts"]["unparseable"] == 1 and result["parse"]["unparseable_lines"] == [5]
    assert result["counts"]["judged"] == 1 and len(server.log) == 1  # the REAL answer needs no call
    assert result["ci95"] is None


def test_per_video_protocol_matches_each_prediction_to_its_best_trace(tmp_path):
    refs = [reference("v", "fake", bbox=[0, 0, 640, 720], start=1.0, explanation="Left arm bends."),
            reference("v", "fake", bbox=[640, 0, 1280, 720], start=3.0, explanation="Right arm bends.")]
    same = fake_answer([0, 0, 640, 720], 1.0, "Left arm bends.")  # both samples get the same generation
    refs_path, preds_path = files(tmp_path, refs, [same, same])
    with JudgeServer() as server:
        proc = run(["--predictions", preds_path, "--references", refs_path, "--judge-base-url", server.base_url,
                    "--bootstrap", "0", "--out", "m.json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "m.json").read_text())
    paper, video = result["metrics"], result["per_video"]["metrics"]
    assert paper["bbox_iou"] == 50.0 and paper["time_distance"] == pytest.approx(20.0)
    assert paper["explanation"] == 50.0  # "Left arm bends." vs "Right arm bends." → 0 from the rule judge
    assert video["bbox_iou"] == 100.0 and video["time_distance"] == 0.0 and video["explanation"] == 100.0
    assert result["per_video"]["counts"] == {"videos": 1, "fake_videos": 1, "real_videos": 0, "rematched_samples": 1}


def test_no_judge_leaves_explanation_and_overall_null(tmp_path):
    refs, preds = files(tmp_path, standard_set())
    proc = run(["--predictions", preds, "--references", refs, "--no-judge", "--out", "m.json"], cwd=tmp_path, key=False)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert m["explanation"] is None and m["overall"] is None and m["accuracy"] == 100.0
    assert "| Explanation ↑ | – |" in proc.stdout


def test_box_conventions_and_compat(tmp_path):
    # a 0-1000 answer convention (meta.answer_bbox_format) and a model that writes Qwen box tokens
    refs = [reference("q", "fake", bbox=[100, 50, 300, 250], start=1.0, width=1000, height=500,
                      answer_format="norm1000")]
    qwen = "FAKE. The unnatural part is at <|box_start|>(100,100),(300,500)<|box_end|> starting 1.0 seconds."
    refs_path, preds_path = files(tmp_path, refs, [qwen])
    args = ["--predictions", preds_path, "--references", refs_path, "--no-judge", "--bootstrap", "0", "--out", "m.json"]
    assert run(args, cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["bbox_iou"] == pytest.approx(100.0)
    # --bbox-format overrides the references: read as pixels, the same numbers are a different box
    assert run([*args, "--bbox-format", "pixels"], cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["bbox_iou"] < 50
    # --compat reads only the paper's formats: Qwen box tokens are not a box there
    assert run([*args, "--compat"], cwd=tmp_path).returncode == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["metrics"]["bbox_iou"] == 0.0 and result["settings"]["compat"] is True
    assert result["parse"]["issues"] == {"fake without box": 1, "fake without explanation": 1}


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("score.py: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_join_errors_are_one_line(tmp_path):
    refs = standard_set()
    preds = [prediction(r) for r in refs]
    refs_path = write(tmp_path / "refs.jsonl", refs)
    base = ["--references", refs_path, "--no-judge", "--out", "m.json"]

    def err(records, *extra):
        path = write(tmp_path / "preds.jsonl", records)
        return one_line_error(run(["--predictions", path, *base, *extra], cwd=tmp_path))

    msg = err(preds + preds[:1])  # swift infer appended to an old result file
    assert "13 predictions" in msg and "12 references" in msg and "appends" in msg
    msg = err([preds[2], preds[1], preds[0], *preds[3:]])  # out of order: the media paths differ
    assert "preds.jsonl:1: videos" in msg and "refs.jsonl:1" in msg
    msg = err([preds[1], preds[0], *preds[2:]])  # same video, other trace: only the reference text differs
    assert "preds.jsonl:1: labels" in msg and "refs.jsonl:1" in msg
    msg = err([{k: v for k, v in p.items() if k != "response"} if i == 3 else p for i, p in enumerate(preds)])
    assert "preds.jsonl:4: no 'response' key" in msg
    (tmp_path / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds[:5]) + "{oops\n")
    msg = one_line_error(run(["--predictions", tmp_path / "preds.jsonl", *base], cwd=tmp_path))
    assert "preds.jsonl:6: invalid JSON" in msg
    msg = one_line_error(run(["--predictions", tmp_path / "missing.jsonl", *base], cwd=tmp_path))
    assert "missing.jsonl: cannot read" in msg
    assert not (tmp_path / "m.json").exists()


def test_reference_errors_are_one_line(tmp_path):
    good = reference("a", "fake", bbox=[1, 2, 3, 4], start=0.0)

    def err(ref, *extra):
        refs_path, preds_path = files(tmp_path, [ref])
        return one_line_error(run(["--predictions", preds_path, "--references", refs_path, "--no-judge", *extra],
                                  cwd=tmp_path))

    msg = err({**good, "meta": {k: v for k, v in good["meta"].items() if k != "task"}})
    assert "cannot tell the task" in msg and "--task" in msg
    assert "a fake sample needs meta.bbox" in err({**good, "meta": {**good["meta"], "bbox": None}}, "--task",
                                                   "deeptrace")
    assert "refs.jsonl:1: meta.duration must be positive" in err({**good, "meta": {**good["meta"], "duration": 0}})
    assert "meta.label must be 'fake' or 'real'" in err({**good, "meta": {**good["meta"], "label": "maybe"}})
    assert "not a known task" in err({**good, "meta": {**good["meta"], "task": "nonsense"}})
    assert "no 'meta' object" in err({k: v for k, v in good.items() if k != "meta"}, "--task", "deeptrace")
    (tmp_path / "empty.jsonl").write_text("\n")
    # a real process: one line on stderr, no traceback, exit code 2
    msg = one_line_error(run_process(["--predictions", tmp_path / "empty.jsonl", "--references",
                                      tmp_path / "empty.jsonl", "--no-judge"], cwd=tmp_path))
    assert "empty.jsonl: no references" in msg


def test_judge_problems_are_one_line_and_write_nothing(tmp_path):
    """A judge that cannot run at all (no key, refused credentials) stops the run; so does any failed call under
    --judge-strict (without it failed calls make the judge-based metrics partial: tests/eval/test_judge_failures.py)."""
    refs, preds = files(tmp_path, standard_set())
    args = ["--predictions", preds, "--references", refs, "--out", "m.json", "--bootstrap", "0"]
    msg = one_line_error(run(args, cwd=tmp_path, key=False))
    assert "OPENAI_API_KEY is not set" in msg
    with JudgeServer(lambda r: {"status": 500}) as server:
        msg = one_line_error(run([*args, "--judge-base-url", server.base_url, "--judge-retries", "0",
                                  "--judge-strict"], cwd=tmp_path))
    assert "7 of 7 explanation calls failed" in msg and "HTTP 500" in msg and "re-run" in msg
    with JudgeServer(lambda r: {"status": 401}) as server:
        msg = one_line_error(run([*args, "--judge-base-url", server.base_url], cwd=tmp_path))
    assert "HTTP 401" in msg and SECRET not in msg
    assert not (tmp_path / "m.json").exists()


def test_help_lists_task_flags(tmp_path):
    proc = run(["--help"], cwd=tmp_path)
    assert proc.returncode == 0 and "--judge-concurrency" in proc.stdout and "--bbox-format" not in proc.stdout
    proc = run(["--task", "deeptrace", "--help"], cwd=tmp_path)
    assert proc.returncode == 0 and "--bbox-format" in proc.stdout


def test_killed_judging_run_resumes_without_repeating_a_call(tmp_path):
    refs = [reference(f"k{i}", "fake", bbox=[0, 0, 100, 100], start=1.0,
                      explanation=f"Object {i} melts into the floor.") for i in range(12)] + [reference("r", "real")]
    responses = [fake_answer([0, 0, 100, 100], 1.0,
                             [f"Object {i} melts into the floor.", f"Object {i} is blurry.", "Nothing odd."][i % 3])
                 for i in range(12)] + [None]
    refs_path, preds_path = files(tmp_path, refs, responses)
    cache = tmp_path / "judge-cache.jsonl"
    args = ["--predictions", preds_path, "--references", refs_path, "--judge-cache", cache, "--judge-concurrency", "3",
            "--bootstrap", "0", "--out", tmp_path / "m.json"]

    lock, answered, hold = threading.Lock(), [0], threading.Event()

    def first_five_then_hang(request):
        with lock:
            if answered[0] < 5:
                answered[0] += 1
                return {"reply": rule_judge(request["prompt"])}
        return {"hold": hold}  # in flight when the run is killed; never answered

    script = {"fn": first_five_then_hang}
    with JudgeServer(lambda r: script["fn"](r)) as server:
        env = environment(key=True)
        with (tmp_path / "run1.log").open("w") as log:
            proc = subprocess.Popen([sys.executable, str(SCORE), *map(str, args), "--judge-base-url", server.base_url],
                                    cwd=tmp_path, env=env, stdout=log, stderr=log)
            deadline = time.monotonic() + 60
            while not (cache.exists() and len(cache.read_text().splitlines()) >= 5):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run1.log").read_text()
                time.sleep(0.05)
            while server.in_flight < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        hold.set()
        assert not (tmp_path / "m.json").exists()
        assert len(cache.read_text().splitlines()) == 5
        first_run = list(server.log)
        assert sum(e["outcome"] == "answered" for e in first_run) == 5
        script["fn"] = lambda r: {"reply": rule_judge(r["prompt"])}

        second = run([*args, "--judge-base-url", server.base_url], cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        n_after_second = len(server.log)
        third = run([*args, "--judge-base-url", server.base_url], cwd=tmp_path)
        assert third.returncode == 0, third.stderr
        assert len(server.log) == n_after_second  # a finished run is answered entirely from the cache

    answered_prompts = [e["prompt"] for e in server.log if e["outcome"] == "answered"]
    assert len(answered_prompts) == 12 and len(set(answered_prompts)) == 12  # nothing repeated, nothing lost
    assert sum(e["outcome"] == "dropped" for e in first_run) == 3  # the kill really interrupted calls in flight
    assert len(cache.read_text().splitlines()) == 12
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["metrics"]["explanation"] == pytest.approx(100 * (4 * 1 + 4 * 0.5) / 12)
    assert result["judge"]["cached"] == 12 and result["judge"]["calls"] == 0
    assert_no_secret(cache, tmp_path / "m.json", tmp_path / "run1.log", second.stdout, second.stderr)
