"""eval/report.py: the HTML report built from real mp4/png media, opened in headless Chromium (tests/support/cdp.py) —
DOM queries, filters, pagination, a non-blank screenshot, no console errors, no request leaving file:// — plus
the judge scores read from score.py's real judge cache, FakeClue/DeepfakeJudge cards, atomic output and errors."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from eval import report, score
from prompts.deeptrace import REAL_ANSWER, fake_answer
from tests.support.cdp import Browser, find_chromium
from tests.support.cli import run_main
from tests.support.eval_samples import prediction, reference, standard_set, write
from tests.support.judge_server import JudgeServer
from tests.support.media import write_mp4, write_png

ROOT = Path(__file__).resolve().parents[2]
W, H = 64, 48  # the clips' size (tests/support/media.py); the references' boxes are scaled to it


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:  # never skipped: tests/run.sh and .ci/run install it (scripts/setup_chromium.sh)
        pytest.fail("chromium is not installed: run bash scripts/setup_chromium.sh")
    with Browser() as b:
        yield b


def deeptrace_refs(tmp: Path) -> list[dict]:
    """standard_set() (tests/support/eval_samples.py) on real 64x48 clips (6 s, 4 fps): 8 fake traces, 6 videos,
    4 real."""
    refs = standard_set()
    for i, ref in enumerate(refs):
        meta = ref["meta"]
        ref["videos"] = [str(write_mp4(tmp / "videos" / f"{meta['video_id']}.mp4", i, width=W, height=H, fps=4,
                                       frames=24))]
        if meta["bbox"]:
            sx, sy = W / meta["width"], H / meta["height"]
            meta["bbox"] = [round(v * s) for v, s in zip(meta["bbox"], (sx, sy, sx, sy), strict=True)]
        meta.update(width=W, height=H, duration=6.0, fps=4.0)
        if meta["label"] == "fake":
            ref["messages"][-1]["content"] = fake_answer(meta["bbox"], meta["start"], meta["explanation"])
    return refs


XSS = 'The sky <img src="x" onerror="console.error(1)"><script>console.error(2)</script> flickers.'


def deeptrace_responses(refs: list[dict]) -> list[str | None]:
    """None = the reference answer (perfect). Sample 1: right explanation, half the box, a later onset; 2: REAL on a
    fake (wrong); 4: unparseable; 9: FAKE on a real video with an HTML/JS-laden explanation."""
    out: list[str | None] = [None] * len(refs)
    m0 = refs[0]["meta"]
    x0, y0, x1, y1 = m0["bbox"]
    out[0] = fake_answer([x0, y0, (x0 + x1) / 2, y1], m0["start"] + 1.0, m0["explanation"])
    out[1] = REAL_ANSWER
    out[3] = "I cannot tell."
    out[8] = fake_answer([10, 10, 30, 30], 1.0, XSS)
    return out


def write_pair(tmp: Path, refs: list[dict], responses: list[str | None]) -> tuple[Path, Path]:
    preds = [prediction(r, responses[i]) for i, r in enumerate(refs)]
    return write(tmp / "refs.jsonl", refs), write(tmp / "preds.jsonl", preds)


def page_data(out: Path) -> dict:
    text = (out / "index.html").read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def set_value(page, element_id: str, value: str) -> None:
    """Set a form control as a user would (the page listens to input and change events)."""
    page.evaluate(f"{{ const e = document.getElementById('{element_id}'); e.value = '{value}';"
                  f" e.dispatchEvent(new Event('change')); }}")


def not_blank(png: bytes) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] >= 800
    assert max(ImageStat.Stat(image).stddev) > 20  # not a single colour
    assert len(image.getcolors(1 << 20) or []) > 50  # text, charts and frames, not an empty page


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """References + predictions scored by eval/score.py with the judge (a real HTTP server), metrics.json written."""
    tmp = tmp_path_factory.mktemp("scored")
    refs = deeptrace_refs(tmp)
    ref_path, pred_path = write_pair(tmp, refs, deeptrace_responses(refs))
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = "sk-test-report"
    try:
        with JudgeServer() as server:
            assert score.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out",
                               str(tmp / "metrics.json"), "--judge-base-url", server.base_url,
                               "--bootstrap", "200"]) == 0
    finally:
        if old is None:
            os.environ.pop("OPENAI_API_KEY")
        else:
            os.environ["OPENAI_API_KEY"] = old
    return tmp, ref_path, pred_path, refs


@pytest.mark.e2e
def test_deeptrace_report_in_chromium(scored, browser, tmp_path):
    tmp, ref_path, pred_path, refs = scored
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, str(ROOT / "eval" / "report.py"), "--predictions", str(pred_path),
                           "--references", str(ref_path), "--metrics", str(tmp / "metrics.json"), "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "report: wrote" in proc.stdout and "12 samples" in proc.stdout

    # self-contained: one page + assets, every local reference resolves, nothing external
    html = (out / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "<script>console.error(2)</script>" not in html  # the model's text is data, escaped for the script tag
    assert sorted(p.name for p in out.iterdir()) == [".report-files.json", "assets", "index.html"]  # + its manifest
    data = page_data(out)
    for card in data["cards"]:
        for frame in card["frames"]:
            assert frame["src"] and (out / frame["src"]).is_file(), frame
    for name in ("category.png", "confusion.png"):
        assert Image.open(out / "assets" / name).size[0] > 300
    assert not list(tmp_path.glob(".report.*"))  # the temporary directory was renamed, not left behind

    cards = data["cards"]
    assert [c["correct"] for c in cards] == [True, False, True, False] + [True] * 4 + [False] + [True] * 3
    assert cards[0]["iou"] == pytest.approx(50.0) and cards[0]["tdist"] == pytest.approx(100 / 6)
    assert [c["judge"] for c in cards[:8]] == [1.0, 0.0, None, 0.0, 1.0, 1.0, 1.0, 1.0]  # v2 has no explanation
    assert cards[3]["pred"] is None and cards[3]["unparseable"]
    assert [len(c["frames"]) for c in cards] == [2, 1, 2, 1, 2, 2, 2, 2, 1, 1, 1, 1]

    page = browser.open((out / "index.html").as_uri(), width=1280, height=900)
    page.wait("document.body.dataset.ready === '1'")
    q = page.evaluate
    # metrics table with CIs, from metrics.json (judge included)
    overall = q("Array.from(document.querySelectorAll('#metrics-table tr[data-metric=overall] td'))"
                ".map(td => td.textContent)")
    metrics = json.loads((tmp / "metrics.json").read_text())
    lo, hi = metrics["ci95"]["overall"]
    assert overall[:3] == ["Overall ↑", f"{metrics['metrics']['overall']:.1f}", f"{lo:.1f}–{hi:.1f}"]
    assert q("document.querySelectorAll('#by-category tbody tr').length") == len(metrics["by_category"])
    # charts and the first page of cards with their frames (lazy images)
    assert q("['category-chart', 'confusion-chart'].every(id => { const i = document.getElementById(id);"
             " return i.complete && i.naturalWidth > 300; })")
    assert q("document.querySelectorAll('#cards .card').length") == 12
    assert q("document.getElementById('page-info').textContent") == "page 1 of 1 · 1–12 of 12 samples"
    assert q("Array.from(document.querySelectorAll('#cards img')).every(i => i.loading === 'lazy')")
    q("document.getElementById('cards').scrollIntoView()")
    page.wait("Array.from(document.querySelectorAll('#sample-0 img')).every(i => i.complete && i.naturalWidth > 0)")
    assert q("Array.from(document.querySelectorAll('#sample-0 figcaption')).map(f => f.textContent)") == [
        "ground-truth onset 1.00 s", "predicted onset 2.00 s"]
    assert q("Array.from(document.querySelectorAll('#sample-0 .chip')).map(c => c.textContent)")[0] == "IoU: 50.0"
    assert "Judge: 1" in q("document.querySelector('#sample-0 .chips').textContent")
    assert q("document.querySelector('#sample-0 dl').textContent").count("The dog has five legs.") == 2
    # the HTML-laden explanation is shown as text, never run or parsed
    assert XSS in q("document.querySelector('#sample-8 dl').textContent")
    assert q("document.querySelectorAll('#cards img[src=x], #cards script').length") == 0
    png = page.screenshot()
    not_blank(png)
    (tmp_path / "screenshot.png").write_bytes(png)

    # filters (plain JS): wrong verdict, unparseable, IoU below a threshold, label, search; the view is in the URL
    def click(element_id: str) -> None:
        q(f"document.getElementById('{element_id}').click()")

    def shown() -> list[int]:
        return q("Array.from(document.querySelectorAll('#cards .card')).map(c => Number(c.dataset.index))")

    click("filter-wrong")
    assert shown() == [1, 3, 8]
    assert "wrong" in q("decodeURIComponent(location.hash)")
    click("filter-wrong")
    click("filter-unparseable")
    assert shown() == [3]
    click("filter-unparseable")
    click("filter-iou")  # below 50 (strictly): the missed and unparseable fakes; sample 0 has exactly 50
    assert shown() == [1, 3]
    set_value(page, "iou-threshold", "60")
    assert shown() == [0, 1, 3]
    click("filter-iou")
    set_value(page, "filter-truth", "real")
    assert shown() == [8, 9, 10, 11]
    click("reset-filters")
    set_value(page, "filter-search", "SOFA")
    assert shown() == [1]
    click("reset-filters")
    set_value(page, "sort", "iou")
    assert shown() == [1, 3, 0, 2, 4, 5, 6, 7, 8, 9, 10, 11]  # IoU ascending, ties in input order, real ones last
    # a bookmarked view opens filtered
    page.navigate("about:blank")
    page.navigate((out / "index.html").as_uri() + "#view=" + '{"wrong":true}'.replace('"', "%22"))
    page.wait("document.body.dataset.ready === '1'")
    assert shown() == [1, 3, 8] and q("document.getElementById('filter-wrong').checked")

    assert page.errors == []
    assert page.requests and all(url.startswith("file://") for url in page.requests)


@pytest.mark.e2e
def test_thousands_of_samples_are_paginated(browser, tmp_path):
    """1,500 samples: only one page of cards is in the DOM; paging, filtering and the page size work."""
    clip = str(write_mp4(tmp_path / "clip.mp4", 3, width=W, height=H, fps=4, frames=24))
    refs, responses = [], []
    for i in range(1500):
        if i % 3 == 2:
            ref = reference(f"r{i}", "real", width=W, height=H, duration=6.0)
            responses.append(None)
        else:
            ref = reference(f"f{i}", "fake", bbox=[8, 8, 40, 40], start=1.0, explanation=f"Trace {i}.",
                            categories=[["object distortion", "sudden blurring", "object merging"][i % 3]],
                            width=W, height=H, duration=6.0)
            responses.append(REAL_ANSWER if i % 10 == 0 else None)
        ref["videos"] = [clip]
        refs.append(ref)
    ref_path, pred_path = write_pair(tmp_path, refs, responses)
    out = tmp_path / "big"
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--bootstrap", "0", "--no-frames", "--no-progress"]) == 0
    page = browser.open((out / "index.html").as_uri())
    page.wait("document.body.dataset.ready === '1'")
    q = page.evaluate
    assert q("document.querySelectorAll('#cards .card').length") == 25
    assert q("document.getElementById('page-info').textContent") == "page 1 of 60 · 1–25 of 1500 samples"
    q("document.getElementById('last-page').click()")
    assert q("document.getElementById('page-info').textContent") == "page 60 of 60 · 1476–1500 of 1500 samples"
    set_value(page, "page-size", "250")
    assert q("document.querySelectorAll('#cards .card').length") == 250
    q("document.getElementById('filter-wrong').click()")
    wrong = sum(1 for i in range(1500) if i % 3 != 2 and i % 10 == 0)
    assert q("document.body.dataset.matching") == str(wrong)
    assert q("document.querySelectorAll('#cards .card.wrong').length") == min(wrong, 250)
    q("document.getElementById('next-page').click()")
    assert q("document.getElementById('page-info').textContent").startswith("page 1 of 1")  # 100 wrong: one page
    assert q("document.querySelectorAll('#cards .missing').length") > 0  # --no-frames: placeholders, no broken img
    assert page.errors == []
    not_blank(page.screenshot())


def image_task_files(tmp: Path) -> dict[str, tuple[Path, Path]]:
    """FakeClue-style (meta.label, meta.cate, images) and DeepfakeJudge-pointwise-style (meta.score) files."""
    refs, preds = [], []
    fc = [("fake", "animal", "This is a fake image. The fur merges into the fence."),
          ("real", "animal", "This is a fake image. Too smooth."),
          ("real", "scene", "This is a real image. Shadows are consistent."),
          ("fake", "doc", "I am not sure.")]
    for i, (label, cate, response) in enumerate(fc):
        image = write_png(tmp / "fc" / f"{i}.png", 40 + i)
        answer = f"This is a {label} image. Evidence {i}."
        ref = {"messages": [{"role": "user", "content": "<image>Does the image looks real/fake?"},
                            {"role": "assistant", "content": answer}],
               "images": [str(image)], "meta": {"task": "fakeclue", "label": label, "cate": cate}}
        refs.append(ref)
        preds.append({"response": response, "labels": answer, "messages": ref["messages"][:1], "videos": None,
                      "images": [{"bytes": None, "path": str(image)}], "objects": None, "logprobs": None})
    out = {"fakeclue": (write(tmp / "fc_refs.jsonl", refs), write(tmp / "fc_preds.jsonl", preds))}
    refs, preds = [], []
    for i, (truth, pred) in enumerate([(5, "<score>5</score>"), (4, "<score>2</score>"), (1, "no score")]):
        image = write_png(tmp / "dfj" / "images" / f"{i}.png", 60 + i)
        answer = f"<reasoning>r</reasoning>\n<score>{truth}</score>"
        ref = {"messages": [{"role": "user", "content": "<image>Rate the response."},
                            {"role": "assistant", "content": answer}],
               "images": [f"images/{i}.png"], "meta": {"task": "dfj-pointwise", "score": truth, "label": "fake"}}
        refs.append(ref)
        preds.append({"response": pred, "labels": answer, "messages": ref["messages"][:1], "videos": None,
                      "images": [f"images/{i}.png"], "objects": None, "logprobs": None})
    (tmp / "dfj").mkdir(exist_ok=True)
    out["dfj-pointwise"] = (write(tmp / "dfj" / "refs.jsonl", refs), write(tmp / "dfj" / "preds.jsonl", preds))
    return out


@pytest.mark.e2e
def test_fakeclue_and_deepfakejudge_cards(browser, tmp_path):
    files = image_task_files(tmp_path)
    ref_path, pred_path = files["fakeclue"]
    out = tmp_path / "fc_report"
    args = ["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out), "--bootstrap", "50",
            "--no-progress"]
    assert report.main(args) == 0
    cards = page_data(out)["cards"]
    assert [(c["truth"], c["pred"], c["correct"]) for c in cards] == [
        ("fake", "fake", True), ("real", "fake", False), ("real", "real", True), ("fake", None, False)]
    assert [c["categories"] for c in cards] == [["animal"], ["animal"], ["scene"], ["doc"]]
    assert all(len(c["frames"]) == 1 and (out / c["frames"][0]["src"]).is_file() for c in cards)
    assert (out / "assets" / "category.png").is_file() and (out / "assets" / "confusion.png").is_file()
    page = browser.open((out / "index.html").as_uri())
    page.wait("document.body.dataset.ready === '1'")
    assert page.evaluate("document.querySelectorAll('#cards .card').length") == 4
    assert page.evaluate("document.querySelector('#metrics-table tr[data-metric=accuracy] td:nth-child(2)')"
                         ".textContent") == "50.0"
    page.evaluate("document.getElementById('cards').scrollIntoView()")  # lazy images load near the viewport
    page.wait("Array.from(document.querySelectorAll('#cards img')).every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("getComputedStyle(document.getElementById('filter-iou').parentNode).display") == "none"
    assert page.errors == []

    ref_path, pred_path = files["dfj-pointwise"]  # relative image paths: resolved against the references' folder
    out = tmp_path / "dfj_report"
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--bootstrap", "0", "--no-progress"]) == 0
    cards = page_data(out)["cards"]
    assert [(c["truth"], c["pred"], c["correct"]) for c in cards] == [("5", "5", True), ("4", "2", False),
                                                                      ("1", None, None)]
    assert all(c["frames"][0]["src"] for c in cards)
    page.navigate((out / "index.html").as_uri())
    page.wait("document.body.dataset.ready === '1'")
    assert page.evaluate("document.querySelectorAll('#cards .card').length") == 3
    assert page.errors == []


def test_metrics_computed_without_metrics_file_and_score_report_flag(scored, tmp_path):
    tmp, ref_path, pred_path, refs = scored
    out = tmp_path / "r"
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--bootstrap", "100", "--no-progress"]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "computed by eval/score.py" in html and "Explanation and overall need the LLM judge" in html
    cells = re.findall(r"<td>(.*?)</td>", re.search(r"<tr data-metric='accuracy'>(.*?)</tr>", html).group(1))
    assert cells[1] == "75.0" and re.fullmatch(r"\d+\.\d–\d+\.\d", cells[2])  # value, bootstrap CI
    assert re.findall(r"<td>(.*?)</td>", re.search(r"<tr data-metric='explanation'>(.*?)</tr>", html).group(1)
                      )[1] == "–"  # --no-judge semantics
    # the judge scores still come from the judge cache beside the predictions (preds.judge.jsonl)
    assert [c["judge"] for c in page_data(out)["cards"][:2]] == [1.0, 0.0]

    # another model's metrics beside these: a table column and bars in the category chart
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--metrics", str(tmp / "metrics.json"), "--compare", f"GPT-5={tmp / 'metrics.json'}",
                        "--name", "ours", "--no-frames", "--no-progress"]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "<th>metric</th><th>ours</th><th>95% CI</th><th>per video (ours)</th><th>GPT-5</th>" in html
    assert "Per category: Fake Acc. ↑, Explanation ↑, BBox IoU ↑, 100 − Time Dist. ↑" in html

    # score.py --report DIR: metrics and report in one run (here without the judge)
    assert score.main(["--predictions", str(pred_path), "--references", str(ref_path), "--no-judge",
                       "--bootstrap", "0", "--report", str(tmp_path / "from_score")]) == 0
    assert len(page_data(tmp_path / "from_score")["cards"]) == 12


def run_cli(args, cwd):
    return run_main(report.main, args, prog=ROOT / "eval" / "report.py", cwd=cwd)


def run_process(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "eval" / "report.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_errors_are_one_line_and_output_is_atomic(scored, tmp_path):
    tmp, ref_path, pred_path, refs = scored
    short = write(tmp_path / "short.jsonl", [json.loads(line) for line in pred_path.read_text().splitlines()[:5]])
    proc = run_process(["--predictions", short, "--references", ref_path, "--out", tmp_path / "r"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "has 5 predictions but" in proc.stderr
    assert not (tmp_path / "r").exists() and not list(tmp_path.glob(".r.*"))

    other = tmp_path / "not_a_report"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    proc = run_cli(["--predictions", pred_path, "--references", ref_path, "--out", other], tmp_path)
    assert proc.returncode == 2 and "is not a report directory" in proc.stderr
    assert (other / "keep.txt").read_text() == "mine"

    proc = run_cli(["--predictions", pred_path, "--references", ref_path, "--out", tmp_path / "r",
                    "--judge-cache", tmp_path / "nothing.jsonl"], tmp_path)
    assert proc.returncode == 2 and "--judge-cache" in proc.stderr and not (tmp_path / "r").exists()

    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics": {}, "task": "deeptrace", "counts": {"n": 3}}')
    proc = run_cli(["--predictions", pred_path, "--references", ref_path, "--out", tmp_path / "r", "--metrics", bad,
                    "--no-frames"], tmp_path)
    assert proc.returncode == 2 and "scored 3 samples" in proc.stderr and not (tmp_path / "r").exists()

    # a report is replaced as a whole (no stale assets), and nothing temporary is left beside it
    out = tmp_path / "again"
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--bootstrap", "0", "--no-progress"]) == 0
    assert len(list((out / "assets" / "media").iterdir())) == 18
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out),
                        "--bootstrap", "0", "--no-progress", "--no-frames"]) == 0
    assert not (out / "assets" / "media").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    # missing media: the cards say so, the report is still written (perfect predictions: 8 x 2 + 4 frames)
    moved = [dict(r, videos=["/nowhere/" + Path(r["videos"][0]).name]) for r in refs]
    preds = [prediction(r) for r in moved]
    assert report.main(["--predictions", str(write(tmp_path / "p.jsonl", preds)), "--references",
                        str(write(tmp_path / "m.jsonl", moved)), "--out", str(tmp_path / "m"), "--bootstrap", "0",
                        "--no-progress"]) == 0
    html = (tmp_path / "m" / "index.html").read_text(encoding="utf-8")
    assert "Pictures missing: 20 video not found" in html


def test_report_folder_keeps_the_users_files(scored, tmp_path):
    """A report re-written into its folder replaces only its own files (listed in .report-files.json); a non-empty
    folder it did not write — an old report's index.html with the user's notes.txt and sub/data.csv beside it — is
    refused untouched, by report.py and by score.py --report (before scoring)."""
    tmp, ref_path, pred_path, refs = scored
    out = tmp_path / "r"
    base = ["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(out), "--bootstrap", "0",
            "--no-progress"]
    assert report.main([*base, "--no-frames"]) == 0
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("a,b\n1,2\n")
    assert report.main(base) == 0  # with frames: more files of its own
    own = json.loads((out / report.MANIFEST).read_text())["files"]
    assert "index.html" in own and sum(f.startswith("assets/media/") for f in own) == 18
    assert "notes.txt" not in own and "sub/data.csv" not in own
    assert report.main([*base, "--no-frames"]) == 0
    assert not (out / "assets" / "media").exists()
    assert (out / "notes.txt").read_text() == "my notes" and (out / "sub" / "data.csv").read_text() == "a,b\n1,2\n"
    assert len(page_data(out)["cards"]) == 12

    old = tmp_path / "old_report"
    (old / "sub").mkdir(parents=True)
    before = {"index.html": "<html>an older report</html>", "notes.txt": "my notes", "sub/data.csv": "1,2\n"}
    for name, text in before.items():
        (old / name).write_text(text)
    proc = run_cli(["--predictions", pred_path, "--references", ref_path, "--out", old], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not a report directory" in proc.stderr
    proc = run_main(score.main, ["--predictions", pred_path, "--references", ref_path, "--no-judge", "--out",
                                 tmp_path / "m.json", "--report", old], prog=ROOT / "eval" / "score.py", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and f"--report {old}: is not a report" in proc.stderr
    assert not (tmp_path / "m.json").exists()
    assert {p.relative_to(old).as_posix(): p.read_text() for p in old.rglob("*") if p.is_file()} == before


def test_report_marks_partial_judge_metrics(scored, tmp_path):
    tmp, ref_path, pred_path, refs = scored
    result = json.loads((tmp / "metrics.json").read_text())
    result["judge"].update(failed=1, failures={"HTTP 400: content filter": 1},
                           coverage={"status": "partial", "needed": 7, "scored": 6, "failed": 1, "fraction": 0.857,
                                     "min_coverage": 0.8})
    (tmp_path / "m.json").write_text(json.dumps(result))
    assert report.main(["--predictions", str(pred_path), "--references", str(ref_path), "--out", str(tmp_path / "r"),
                        "--metrics", str(tmp_path / "m.json"), "--no-frames", "--no-progress"]) == 0
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    note = re.search(r"<span class='warn' id='judge-partial'>(.*?)</span>", html).group(1)
    assert "explanation and overall: PARTIAL, over 6 of 7 samples" in note and "HTTP 400: content filter (1)" in note
