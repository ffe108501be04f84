"""`eval/score.py --task deeptrace --no-judge` on 100,000 predictions, against just reading and JSON-parsing both files.

Predictions are the SFT answer format (half right, a quarter wrong box/time, a quarter unparseable-ish noise), so
the parser, the join check and every metric do real work; bootstrap CIs are off (`--bootstrap 0`) so the ratio
measures parsing + metrics, not resampling.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from bench.harness import Case
from common.jsonl import write_jsonl
from eval import score
from prompts.deeptrace import REAL_ANSWER, fake_answer, question


def _files(n: int, folder: Path) -> tuple[Path, Path]:
    refs, preds = [], []
    q = question()
    for i in range(n):
        fake = i % 3 != 0
        video = f"/data/videos/{i // 2:06d}.mp4"
        box = [10 + i % 50, 20, 200 + i % 70, 180]
        start = (i % 40) / 10
        answer = fake_answer(box, start, "The hand has six fingers.") if fake else REAL_ANSWER
        meta = {"task": "deeptrace", "video_id": video, "label": "fake" if fake else "real",
                "bbox": box if fake else None, "start": start if fake else None, "end": start + 1 if fake else None,
                "width": 640, "height": 360, "duration": 5.0, "fps": 30.0,
                "explanation": "The hand has six fingers." if fake else None,
                "categories": ["Object Distortion"] if fake else [], "source": "Sora" if fake else None,
                "variant": "full", "bbox_format": "pixels"}
        refs.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}],
                     "videos": [video], "meta": meta})
        kind = i % 4
        response = (answer if kind < 2 else fake_answer([b + 15 for b in box], start + 0.7, "Blurry.") if kind == 2
                    else "I am not sure what this video shows.")
        preds.append({"response": response, "labels": answer, "videos": [video], "images": [], "dataset": "x"})
    write_jsonl(folder / "refs.jsonl", refs)
    write_jsonl(folder / "preds.jsonl", preds)
    return folder / "preds.jsonl", folder / "refs.jsonl"


def cases(scale: float) -> list[Case]:
    n = max(1000, int(100_000 * scale))
    folder = Path(tempfile.mkdtemp(prefix="bench_score_"))
    preds, refs = _files(n, folder)

    def read_both() -> int:
        count = 0
        for path in (preds, refs):
            with path.open(encoding="utf-8") as fh:
                count += sum(1 for line in fh if json.loads(line))
        return count

    def run_score() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the printed tables are not what is measured
            code = score.main(["--task", "deeptrace", "--predictions", str(preds), "--references", str(refs),
                               "--no-judge", "--bootstrap", "0", "--out", str(folder / "metrics.json")])
        assert code in (0, None)

    return [Case("score 100k (no judge)", read_both, run_score, baseline_label="read + json-parse both files",
                 units=n)]

