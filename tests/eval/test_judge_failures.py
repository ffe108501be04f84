"""The judge never blocks the metrics: `eval/score.py` against a real HTTP judge (tests/support/judge_server.py) that
refuses some calls (a content filter's 400, a model that rejects temperature 0, a malformed 200, blank replies).
Every metric that does not need the judge is written; failed calls are counted with their reasons; explanation and
overall are computed over the judged samples and marked partial, or null below --judge-min-coverage; a re-run asks
only the failed calls. Also: explanations sent to the judge are capped, and output paths are checked first."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eval import judging, score
from eval.deeptrace import JudgeLookup
from prompts.deeptrace import JUDGE_PROMPT, fake_answer
from tests.support.cli import run_main
from tests.support.eval_samples import prediction, reference, standard_set, write
from tests.support.judge_server import JudgeServer, rule_judge

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-judge-failures-0c4f"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def files(tmp: Path, refs: list[dict], responses: list[str | None] | None = None) -> tuple[Path, Path]:
    preds = [prediction(r, None if responses is None else responses[i]) for i, r in enumerate(refs)]
    return write(tmp / "refs.jsonl", refs), write(tmp / "preds.jsonl", preds)


def score_json(tmp: Path, refs: Path, preds: Path, server: JudgeServer, *extra: str) -> dict:
    assert score.main(["--predictions", str(preds), "--references", str(refs), "--out", str(tmp / "m.json"),
                       "--judge-base-url", server.base_url, "--bootstrap", "50", *extra]) == 0
    return json.loads((tmp / "m.json").read_text())


def ten_explained(tmp: Path) -> tuple[Path, Path]:
    """10 fake samples with explanations + 2 real. Predictions are perfect except sample 8's explanation (judge 0)."""
    refs = [reference(f"v{i}", "fake", bbox=[0, 0, 640, 360], start=1.0, explanation=f"Object {i} melts away.")
            for i in range(10)] + [reference("r1", "real"), reference("r2", "real")]
    responses: list[str | None] = [None] * len(refs)
    responses[8] = fake_answer([0, 0, 640, 360], 1.0, "Nothing odd here.")
    return files(tmp, refs, responses)


def test_a_content_filter_makes_explanation_partial_and_a_rerun_asks_only_the_failed_call(tmp_path, capsys):
    refs, preds = ten_explained(tmp_path)
    blocked = {"on": True}

    def content_filter(request):
        if blocked["on"] and "Predicted   : 'Object 9 melts away.'" in request["prompt"]:
            return {"status": 400, "message": "The response was filtered due to the prompt triggering a content "
                                              "management policy"}
        return {"reply": rule_judge(request["prompt"])}

    with JudgeServer(content_filter) as server:
        result = score_json(tmp_path, refs, preds, server)
        err = capsys.readouterr().err
        m, c, j = result["metrics"], result["counts"], result["judge"]
        # everything that does not need the judge is there, exactly
        assert (m["accuracy"], m["fake_accuracy"], m["real_accuracy"], m["bbox_iou"], m["time_distance"]) == (
            100.0, 100.0, 100.0, 100.0, 0.0)
        # explanation over the 9 judged samples (8 right, 1 wrong), overall from it; both marked partial
        assert m["explanation"] == pytest.approx(100 * 8 / 9)
        assert m["overall"] == pytest.approx((100 + 100 * 8 / 9 + 100 + 100) / 4)
        assert result["per_video"]["metrics"]["explanation"] == pytest.approx(100 * 8 / 9)
        assert result["partial"] == ["explanation", "overall"]
        assert (c["judge_failed"], c["judged"], c["explained"]) == (1, 9, 10)
        assert j["failures"] == {"HTTP 400: The response was filtered due to the prompt triggering a content "
                                 "management policy": 1}
        assert j["coverage"] == {"status": "partial", "needed": 10, "scored": 9, "failed": 1, "fraction": 0.9,
                                 "min_coverage": judging.MIN_COVERAGE}
        assert "explanation and overall: PARTIAL, over 9 of 10 samples" in err and "content management" in err
        assert len(err.strip().splitlines()) == 1
        assert len((tmp_path / "preds.judge.jsonl").read_text().splitlines()) == 9  # the failure is not cached
        first_run = len(server.log)
        assert first_run == 10

        # the filter lifted: a re-run asks the one failed call and nothing else
        blocked["on"] = False
        result = score_json(tmp_path, refs, preds, server)
        assert len(server.log) == first_run + 1 and "Object 9 melts away." in server.log[-1]["prompt"]
        assert result["metrics"]["explanation"] == pytest.approx(90.0) and result["partial"] == []
        assert result["counts"]["judge_failed"] == 0 and result["judge"]["coverage"]["status"] == "complete"
        assert result["judge"]["cached"] == 9 and result["judge"]["calls"] == 1
        assert "warning" not in capsys.readouterr().err


def test_a_model_that_rejects_temperature_0_leaves_judge_metrics_null_not_the_others(tmp_path, capsys):
    refs, preds = files(tmp_path, standard_set())

    def no_temperature(request):
        if "temperature" in request["body"]:
            return {"status": 400, "message": "Unsupported value: 'temperature' does not support 0 with this model."}
        return {"reply": rule_judge(request["prompt"])}

    with JudgeServer(no_temperature) as server:
        result = score_json(tmp_path, refs, preds, server)
        m = result["metrics"]
        assert m["explanation"] is None and m["overall"] is None and result["partial"] == []
        assert m["accuracy"] == 100.0 and m["bbox_iou"] == 100.0 and result["ci95"]["accuracy"] == [100.0, 100.0]
        assert result["ci95"]["explanation"] is None
        assert all(g["metrics"]["explanation"] is None for g in result["by_category"].values())
        assert result["counts"]["judge_failed"] == 7 and result["judge"]["coverage"]["status"] == "insufficient"
        assert result["judge"]["failures"] == {
            "HTTP 400: Unsupported value: 'temperature' does not support 0 with this model.": 7}
        assert result["judge"]["params"] == {"temperature": 0.0}
        err = capsys.readouterr().err
        assert "explanation and overall: null - only 0 of 7 samples judged, below --judge-min-coverage 0.9" in err
        assert not (tmp_path / "preds.judge.jsonl").exists()

        # --judge-temperature none sends no temperature; --judge-max-tokens is sent as max_tokens
        result = score_json(tmp_path, refs, preds, server, "--judge-temperature", "none", "--judge-max-tokens", "8")
    retried = server.log[7:]
    assert len(retried) == 7 and all("temperature" not in e["body"] and e["body"]["max_tokens"] == 8 for e in retried)
    assert result["metrics"]["explanation"] == 100.0 and result["metrics"]["overall"] == 100.0
    assert result["judge"]["params"] == {"max_tokens": 8} and result["counts"]["judge_failed"] == 0
    # the report finds these answers in the cache with the parameters the metrics record (they are part of the key)
    cache = tmp_path / "preds.judge.jsonl"
    dog = ("The dog has five legs.", "The dog has five legs.")
    assert JudgeLookup(cache, "gpt-4.1", result["judge"]["params"])(*dog) == (1.0, "1")
    assert JudgeLookup(cache, "gpt-4.1")(*dog) == (None, "not judged")  # the defaults: another key


def test_malformed_and_blank_replies_are_failures_never_answers(tmp_path):
    refs, preds = files(tmp_path, standard_set())

    def broken(request):
        if "Predicted   : 'The dog has five legs.'" in request["prompt"]:
            return {"raw": "<html><body>502 Bad Gateway</body></html>"}
        if "Predicted   : 'The cat merges with the sofa.'" in request["prompt"]:
            return {"reply": "", "finish_reason": "content_filter"}
        return {"reply": rule_judge(request["prompt"])}

    with JudgeServer(broken) as server:
        result = score_json(tmp_path, refs, preds, server, "--judge-min-coverage", "0.5")
    failures = result["judge"]["failures"]
    assert failures.pop("empty reply twice (finish_reason content_filter)") == 1
    ((reason, n),) = failures.items()
    assert n == 1 and reason.startswith("malformed reply (JSONDecodeError")
    assert result["judge"]["empty"] == 2 and result["counts"]["judge_failed"] == 2
    assert result["metrics"]["explanation"] == 100.0 and result["partial"] == ["explanation", "overall"]
    assert result["judge"]["coverage"]["scored"] == 5 and result["judge"]["coverage"]["min_coverage"] == 0.5
    replies = [json.loads(line)["reply"] for line in (tmp_path / "preds.judge.jsonl").read_text().splitlines()]
    assert replies == ["1"] * 5  # no blank, no page


def test_explanations_sent_to_the_judge_are_capped(tmp_path):
    long = " ".join(f"word{i}" for i in range(20_000))  # ~129,000 characters
    assert len(long) > 120_000
    refs, preds = files(tmp_path, [reference("v", "fake", bbox=[0, 0, 10, 10], start=0.0, explanation="A hand.")],
                        [fake_answer([0, 0, 10, 10], 0.0, long)])
    with JudgeServer() as server:
        result = score_json(tmp_path, refs, preds, server)
    (entry,) = server.log
    sent = entry["prompt"].rsplit("Predicted   : '", 1)[1].rsplit("'\nAnswer", 1)[0]
    assert len(sent) == judging.MAX_TEXT_CHARS and sent == long[: judging.MAX_TEXT_CHARS - 1] + "…"
    assert len(entry["prompt"]) < len(JUDGE_PROMPT) + judging.MAX_TEXT_CHARS + 100
    assert result["judge"]["cut_texts"] == 1 and result["judge"]["max_text_chars"] == judging.MAX_TEXT_CHARS
    assert result["metrics"]["explanation"] == 0.0


# --- output paths: checked first, one line each; ordinary permissions ------------------------------------------------


def run_cli(args, cwd, umask: int | None = None, *, process: bool = False):
    """score.py's main in this process (tests/support/cli.py) under `umask`; `process`: a real process."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    if process:
        return subprocess.run([sys.executable, str(ROOT / "eval" / "score.py"), *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    saved = os.umask(umask) if umask is not None else None
    try:
        return run_main(score.main, args, prog=ROOT / "eval" / "score.py", cwd=cwd, env=env)
    finally:
        if saved is not None:
            os.umask(saved)


def one_line(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("score.py: error: ") and "Traceback" not in proc.stderr
    return lines[0]


def test_out_directory_and_foreign_judge_cache_are_one_line_errors_before_any_call(tmp_path):
    refs, preds = files(tmp_path, standard_set())
    base = ["--predictions", preds, "--references", refs, "--bootstrap", "0"]
    (tmp_path / "results").mkdir()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with JudgeServer() as server:
        url = ["--judge-base-url", server.base_url]
        msg = one_line(run_cli([*base, *url, "--out", tmp_path / "results"], tmp_path, process=True))
        assert f"--out {tmp_path / 'results'}: is a directory" in msg and "results/metrics.json" in msg
        msg = one_line(run_cli([*base, *url, "--out", "m.json", "--judge-cache", photo], tmp_path))
        assert f"{photo}:1: not UTF-8 text (invalid start byte at byte 1 of the line)" in msg
        assert "--judge-cache must name a reply cache" in msg
        msg = one_line(run_cli([*base, *url, "--out", "m.json", "--judge-cache", notes], tmp_path))
        assert f"{notes}:1: not a reply cache entry" in msg
        msg = one_line(run_cli([*base, *url, "--out", "m.json", "--judge-cache", tmp_path / "results"], tmp_path))
        assert "--judge-cache" in msg and "is a directory" in msg
        assert server.log == []  # checked before any call
    assert photo.read_bytes() == b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" and notes.read_text() == "my notes\n"
    assert list((tmp_path / "results").iterdir()) == [] and not (tmp_path / "m.json").exists()


def test_metrics_file_gets_ordinary_permissions(tmp_path):
    refs, preds = files(tmp_path, standard_set())
    args = ["--predictions", preds, "--references", refs, "--bootstrap", "0", "--no-judge", "--out"]
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"m{umask:o}.json"
        assert run_cli([*args, out], tmp_path, umask=umask).returncode == 0
        assert stat.S_IMODE(out.stat().st_mode) == mode
    out = tmp_path / "m22.json"
    out.chmod(0o664)  # an existing file keeps its mode, as with a plain open()
    assert run_cli([*args, out], tmp_path, umask=0o077).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o664
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
