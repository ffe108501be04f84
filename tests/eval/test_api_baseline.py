"""eval/api_baseline.py against a real OpenAI-compatible server on 127.0.0.1 (tests/support/judge_server.py): the
requests it sends (model, frames per request, timestamps, the App. E prompt byte-exact, images as data URLs), the
swift-infer layout of its output scored by eval/score.py, retries, the cache on a re-run, the budget and
one-line errors."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.join import join
from eval import api_baseline, score
from eval.judge import Judge, JudgeRequest
from tests.support.cli import KeyedCli, run_main
from tests.support.eval_samples import reference, write
from tests.support.judge_server import JudgeServer
from tests.support.media import frame_array, write_mp4, write_png

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "eval" / "api_baseline.py"
ZERO_SHOT = (ROOT / "prompts" / "deeptrace" / "zero_shot.txt").read_bytes().decode("utf-8")  # App. E, byte-exact
SECRET = "sk-test-api-baseline-7d1e"
W, H = 64, 48


CLI = KeyedCli(api_baseline.main, TOOL, SECRET)  # `run` in the test process; `run_process` for the one real process
environment, run, run_process = CLI.environment, CLI.run, CLI.run_process


def videos_and_refs(tmp: Path) -> list[dict]:
    """Clips of 1, 1.5, 2 and 5 s (4 fps): at --fps 2 that is 2, 3, 4 and 10 frames (the last capped to 5).
    v1 has two traces (one request for both: the question is the same), r1 is real."""
    refs = []
    for k, (vid, label, frames) in enumerate([("v0", "fake", 4), ("v1", "fake", 6), ("v1", "fake", 6),
                                             ("r1", "real", 8), ("v3", "fake", 20)]):
        path = write_mp4(tmp / "clips" / f"{vid}.mp4", int(vid[1]), width=W, height=H, fps=4, frames=frames)
        ref = reference(vid, label, bbox=[8, 8, 32, 32] if k != 2 else [40, 20, 60, 44], start=0.5 if k != 2 else 1.0,
                        explanation=f"Trace {k}.", width=W, height=H, duration=frames / 4)
        ref["videos"] = [str(path)]
        refs.append(ref)
    return refs


REPLIES = {  # images per request -> scripted zero-shot reply (App. E tags)
    2: "FAKE <coordinates>[8, 8, 32, 32]</coordinates><start_time>0.5</start_time>"
       "<explanation>Trace 0.</explanation>",
    3: "FAKE <coordinates>[8, 8, 20, 32]</coordinates><start_time>1.0</start_time>"
       "<explanation>The paw bends.</explanation>",
    4: "REAL",
    5: "REAL",
}


def images_in(entry) -> list[dict]:
    return [p for p in entry["body"]["messages"][0]["content"] if p["type"] == "image_url"]


def by_frames(request) -> dict:
    return {"reply": REPLIES[len(images_in(request))]}


def test_zero_shot_requests_and_scoring(tmp_path):
    refs = write(tmp_path / "test.jsonl", videos_and_refs(tmp_path))
    out = tmp_path / "preds.jsonl"
    with JudgeServer(by_frames) as server:
        proc = run(["--model", "gpt-test", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--fps", "2", "--max-frames", "5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(server.log) == 4  # 5 references, the two traces of v1 share one request
    for entry in server.log:
        body = entry["body"]
        assert body["model"] == "gpt-test" and body["temperature"] == 0.0
        assert entry["auth"] == f"Bearer {SECRET}"
        (message,) = body["messages"]
        parts = message["content"]
        assert message["role"] == "user" and parts[-1] == {"type": "text", "text": ZERO_SHOT}
        frames = parts[:-1]
        assert [p["type"] for p in frames] == ["text", "image_url"] * (len(frames) // 2)
        times = [float(p["text"].removeprefix("Time ").removesuffix("s:")) for p in frames[0::2]]
        n = len(times)
        assert n in REPLIES
        expected = {2: [0.0, 0.5], 3: [0.0, 0.5, 1.0], 4: [0.0, 0.5, 1.0, 1.5], 5: [0.0, 1.0, 2.0, 3.5, 4.5]}[n]
        assert times == expected
        for part in frames[1::2]:  # each frame: a JPEG of the clip at its own size
            url = part["image_url"]["url"]
            assert url.startswith("data:image/jpeg;base64,")
            image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
            assert image.size == (W, H)
    assert sorted(len(images_in(e)) for e in server.log) == [2, 3, 4, 5]
    # the frame really is the frame at that time (clip v0: index 0; 4 fps -> t 0.5 s is frame 2)
    (first,) = [e for e in server.log if len(images_in(e)) == 2]
    second = Image.open(io.BytesIO(base64.b64decode(images_in(first)[1]["image_url"]["url"].split(",", 1)[1])))
    diff = abs(np.asarray(second.convert("RGB"), dtype=int) - frame_array(0, 2, W, H)).mean()
    assert diff < 6

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5
    assert set(lines[0]) >= {"response", "labels", "messages", "images", "videos", "objects", "logprobs", "dataset"}
    assert lines[0]["response"] == REPLIES[2] and lines[1]["response"] == lines[2]["response"] == REPLIES[3]
    assert lines[0]["messages"] == [{"role": "user", "content": "<video>" + ZERO_SHOT},
                                    {"role": "assistant", "content": REPLIES[2]}]
    assert lines[4]["api"]["frames"] == 5 and lines[4]["api"]["frame_times"] == [[0.0, 1.0, 2.0, 3.5, 4.5]]
    pairs, verified = join(out, refs)  # the scorer's join: by media path and by the reference answer
    assert verified == {"by_media": 5, "by_labels": 5, "unverified": 0}

    # eval/score.py scores it exactly as it scores swift infer's output
    proc = run_main(score.main, ["--task", "deeptrace", "--predictions", out, "--references", refs, "--no-judge",
                                 "--bootstrap", "0", "--out", tmp_path / "m.json"], prog=ROOT / "eval" / "score.py",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "m.json").read_text())
    m, c = result["metrics"], result["counts"]
    assert (c["n"], c["unparseable"], c["predicted_fake"]) == (5, 0, 3)
    assert m["accuracy"] == pytest.approx(100 * 4 / 5) and m["fake_accuracy"] == 75.0 and m["real_accuracy"] == 100.0
    # IoU: v0 exact (1), v1 trace a half box (0.5), v1 trace b disjoint (0), v3 REAL (0)
    assert m["bbox_iou"] == pytest.approx(100 * 1.5 / 4)
    # time: v0 0; v1a |1.0-0.5|/1.5; v1b 0; v3 missing (1)
    assert m["time_distance"] == pytest.approx(100 * (0 + 0.5 / 1.5 + 0 + 1) / 4)


def test_retries_cache_and_budget(tmp_path):
    refs = write(tmp_path / "test.jsonl", videos_and_refs(tmp_path)[:2])
    out = tmp_path / "preds.jsonl"
    lock = threading.Lock()

    def flaky(request):  # the first request gets a 429 with Retry-After, then a 500; then the rule replies
        with lock:
            if request["n"] == 0:
                return {"status": 429, "headers": {"Retry-After": "0.2"}}
            if request["n"] == 1:
                return {"status": 500}
        return by_frames(request)

    with JudgeServer(flaky) as server:
        proc = run(["--model", "m1", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--concurrency", "1"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert [e["outcome"] for e in server.log] == ["status", "status", "answered", "answered"]
        assert "2 distinct requests: 0 cached, 2 calls, 2 retries, 0 failed" in proc.stdout
        cache = tmp_path / "preds.api.jsonl"  # beside --out
        assert len(cache.read_text().splitlines()) == 2 and SECRET not in cache.read_text()
        assert "base64" not in cache.read_text()  # keys describe the frames (sha256 + indices); no image data
        before = out.read_bytes()
        out.unlink()
        # a re-run makes no call at all, needs no key, and writes the same file
        proc = run(["--model", "m1", "--base-url", server.base_url, "--references", refs, "--out", out], tmp_path,
                   key=False)
        assert proc.returncode == 0, proc.stderr
        assert len(server.log) == 4 and "2 cached, 0 calls" in proc.stdout
        assert out.read_bytes().replace(b'"calls":1', b'"calls":0') == before.replace(b'"calls":1', b'"calls":0')
        # another model (or other frames) is another request; a failed run leaves the old result file alone
        kept = out.read_bytes()
        proc = run(["--model", "m2", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--max-frames", "2", "--budget", "1", "--concurrency", "1"], tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1
        assert "1 of 2 requests failed" in proc.stderr and "budget of 1 exhausted" in proc.stderr
        assert "re-run the same command to resume" in proc.stderr and out.read_bytes() == kept  # untouched
        assert len(server.log) == 5 and server.log[-1]["model"] == "m2"
        assert len(images_in(server.log[-1])) == 2  # --max-frames 2
        # resumed: only the missing one is asked
        proc = run(["--model", "m2", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--max-frames", "2"], tmp_path)
        assert proc.returncode == 0 and len(server.log) == 6 and "1 cached, 1 calls" in proc.stdout


def test_images_with_their_own_question(tmp_path):
    """FakeClue-style references: the image file itself (no re-encoding) where the question's <image> tag is."""
    rows = []
    for i, label in enumerate(["fake", "real"]):
        write_png(tmp_path / "img" / f"{i}.png", 10 + i)
        rows.append({"messages": [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                                  {"role": "assistant", "content": f"This is a {label} image."}],
                     "images": [f"img/{i}.png"], "meta": {"task": "fakeclue", "label": label, "cate": "animal"}})
    refs = write(tmp_path / "fc.jsonl", rows)
    out = tmp_path / "out" / "fc_preds.jsonl"
    out.parent.mkdir()
    with JudgeServer(lambda r: {"reply": "This is a fake image."}) as server:
        proc = run(["--model", "vlm", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--temperature", "none", "--max-tokens", "64", "--detail", "low"], tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert len(server.log) == 2
    for entry in sorted(server.log, key=lambda e: images_in(e)[0]["image_url"]["url"]):
        body = entry["body"]
        assert "temperature" not in body and body["max_tokens"] == 64
        image_part, text_part = body["messages"][0]["content"]
        assert text_part == {"type": "text", "text": "Does the image looks real/fake?"}
        assert image_part["image_url"]["detail"] == "low"
    sent = {base64.b64decode(images_in(e)[0]["image_url"]["url"].split(",", 1)[1]) for e in server.log}
    assert sent == {(tmp_path / "img" / f"{i}.png").read_bytes() for i in range(2)}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["images"] for line in lines] == [["img/0.png"], ["img/1.png"]] and lines[0]["videos"] is None
    assert lines[0]["messages"][0] == rows[0]["messages"][0]
    assert join(out, refs)[1]["unverified"] == 0


def test_errors(tmp_path):
    refs = videos_and_refs(tmp_path)[:2]
    missing = write(tmp_path / "missing.jsonl", [dict(refs[0], videos=["clips/nope.mp4"]), refs[1]])
    with JudgeServer(by_frames) as server:
        proc = run_process(["--model", "m", "--base-url", server.base_url, "--references", missing, "--out",
                            tmp_path / "p.jsonl"], tmp_path)  # a real process: one line, exit code 2
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert "1 media file(s) not found: clips/nope.mp4" in proc.stderr and server.log == []
        proc = run(["--model", "m", "--base-url", server.base_url, "--references", write(tmp_path / "ok.jsonl", refs),
                    "--out", tmp_path / "p.jsonl"], tmp_path, key=False)
        assert proc.returncode == 2 and "OPENAI_API_KEY is not set" in proc.stderr and server.log == []
    with JudgeServer(lambda r: {"status": 401}) as server:
        proc = run(["--model", "nope", "--base-url", server.base_url, "--references", tmp_path / "ok.jsonl", "--out",
                    tmp_path / "p.jsonl", "--concurrency", "1"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "API baseline endpoint refused the request (HTTP 401" in proc.stderr and "--model 'nope'" in proc.stderr
    assert len(server.log) == 1 and not (tmp_path / "p.jsonl").exists()
    proc = run(["--model", "m", "--references", tmp_path / "ok.jsonl", "--out", tmp_path / "p.jsonl", "--prompt",
                "nothing.txt"], tmp_path)
    assert proc.returncode == 2 and "not auto, zero-shot, reference or an existing file" in proc.stderr


def test_judge_client_builds_lazy_requests_once_and_only_when_sent(tmp_path, monkeypatch):
    """The generalisation of eval/judge.py the baseline relies on: callable messages + an explicit cache key."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    built = []

    def lazy(text):
        def build():
            built.append(text)
            if text == "broken":
                raise ValueError("cannot decode")
            return [{"role": "user", "content": [{"type": "text", "text": text}]}]
        return JudgeRequest(build, key=f"k-{text}")

    with JudgeServer(lambda r: {"reply": r["prompt"].upper()}) as server:
        judge = Judge("m", base_url=server.base_url, cache_path=tmp_path / "c.jsonl", progress=False)
        results = judge.run([lazy("a"), lazy("b"), lazy("a"), lazy("broken")], lambda r: r)
        assert [r.value for r in results[:3]] == ["A", "B", "A"] and sorted(built) == ["a", "b", "broken"]
        assert results[3].status == "failed" and "cannot build the request: ValueError" in results[3].error
        assert len(server.log) == 2
        built.clear()
        again = Judge("m", base_url=server.base_url, cache_path=tmp_path / "c.jsonl", progress=False)
        assert [r.value for r in again.run([lazy("a"), lazy("b")], lambda r: r)] == ["A", "B"]
        assert built == [] and len(server.log) == 2  # answered from the cache: nothing built, nothing sent
    with pytest.raises(ValueError, match="explicit key"):
        Judge("m").key(JudgeRequest(lambda: []))


def test_blank_replies_are_not_predictions_and_outputs_are_checked_first(tmp_path):
    """An empty reply (a content filter) is never cached or written as the model's answer: asked once more, then the
    request fails; a re-run asks only it. --out naming a folder is refused before any request; the result file gets
    ordinary permissions."""
    refs = write(tmp_path / "test.jsonl", videos_and_refs(tmp_path)[:2])
    out = tmp_path / "preds.jsonl"
    filtered = {"on": True}

    def content_filter(request):
        if filtered["on"] and len(images_in(request)) == 3:  # the v1 clip
            return {"reply": "", "finish_reason": "content_filter"}
        return by_frames(request)

    with JudgeServer(content_filter) as server:
        (tmp_path / "folder").mkdir()
        proc = run(["--model", "m", "--base-url", server.base_url, "--references", refs, "--out", tmp_path / "folder"],
                   tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert f"--out {tmp_path / 'folder'}: is a directory" in proc.stderr and server.log == []

        proc = run(["--model", "m", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--concurrency", "1"], tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1
        assert "1 of 2 requests failed" in proc.stderr and "empty reply twice (finish_reason content_filter)" in \
            proc.stderr
        assert not out.exists() and len(server.log) == 3  # v0 once, v1 twice
        cache = tmp_path / "preds.api.jsonl"
        assert [json.loads(line)["reply"] for line in cache.read_text().splitlines()] == [REPLIES[2]]

        # --keep-failed writes it with an empty response and says so (scored as unparseable, never cached)
        umask = os.umask(0)
        os.umask(umask)  # (read) the umask the tool inherits
        proc = run(["--model", "m", "--base-url", server.base_url, "--references", refs, "--out", out,
                    "--keep-failed"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["api"]["status"] for line in lines] == ["ok", "failed"] and lines[1]["response"] == ""
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not owner-only
        assert len(cache.read_text().splitlines()) == 1

        filtered["on"] = False
        proc = run(["--model", "m", "--base-url", server.base_url, "--references", refs, "--out", out], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(server.log) == 6 and "1 cached, 1 calls" in proc.stdout  # only the failed one asked again
        assert json.loads(out.read_text().splitlines()[1])["response"] == REPLIES[3]
