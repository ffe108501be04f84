"""Shared JSONL core (common/jsonl.py) against plain `json` loops: the cost of atomic writes and line-numbered reads.

Records are shaped like converter output (messages + videos + meta).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.harness import Case
from common.jsonl import iter_jsonl, write_jsonl
from prompts.deeptrace import fake_answer, question


def _records(n: int) -> list[dict]:
    q = question()
    return [{"messages": [{"role": "user", "content": q},
                          {"role": "assistant",
                           "content": fake_answer([i % 60, 2, 40, 30], i % 7 / 2, "a hand melts.")}],
             "videos": [f"/data/videos/{i:06d}.mp4"],
             "meta": {"task": "deeptrace", "video_id": f"{i:06d}", "label": "fake", "bbox": [i % 60, 2, 40, 30]}}
            for i in range(n)]


def cases(scale: float) -> list:
    n = max(1000, int(100_000 * scale))
    records = _records(n)
    tmp = Path(tempfile.mkdtemp(prefix="bench_jsonl_"))
    plain, ours = tmp / "plain.jsonl", tmp / "ours.jsonl"

    def write_plain() -> None:
        with plain.open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    def write_ours() -> None:
        write_jsonl(ours, records)

    write_plain()
    write_ours()

    def read_plain() -> int:
        with plain.open(encoding="utf-8") as fh:
            return sum(1 for line in fh if json.loads(line))

    def read_ours() -> int:
        return sum(1 for _ in iter_jsonl(ours))

    return [
        Case("write", write_plain, write_ours, note="temp file + rename", units=n),
        Case("read (streamed)", read_plain, read_ours, note="line-numbered errors", units=n),
    ]
