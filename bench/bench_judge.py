"""Judge throughput (eval/judge.py) against the local OpenAI-compatible server with 200 ms latency.

At concurrency 1, 16 and 64 the candidate is `Judge.run` over N distinct requests (cache in a temp file, so every
call is real); the baseline is the same number of raw HTTP posts from a plain thread pool at the same concurrency,
measured in the same run. The note gives the judge's fraction of the ideal rate concurrency / latency (target ≥ 80%).
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Case
from eval.judge import Judge, JudgeRequest
from tests.support.judge_server import JudgeServer

LATENCY = 0.2
_SERVER: JudgeServer | None = None


def _server() -> JudgeServer:
    global _SERVER
    if _SERVER is None:
        _SERVER = JudgeServer(latency=LATENCY).__enter__()
    return _SERVER


def _messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Ground Truth: 'hand {i}'\nPredicted : 'hand {i}'\nAnswer :"}]


def cases(scale: float) -> list[Case]:
    import os

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    server = _server()
    result = []
    for concurrency in (1, 16, 64):
        n = max(concurrency * 2, int(concurrency * 8 * scale) if concurrency > 1 else int(20 * scale) or 5)

        def raw(n: int = n, concurrency: int = concurrency) -> None:
            body = json.dumps({"model": "bench", "messages": _messages(0)}).encode()

            def post(_: int) -> None:
                req = urllib.request.Request(f"{server.base_url}/chat/completions", data=body,
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": "Bearer sk-bench"})
                urllib.request.urlopen(req, timeout=30).read()

            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(post, range(n)))

        def judged(n: int = n, concurrency: int = concurrency) -> None:
            cache = Path(tempfile.mkdtemp(prefix="bench_judge_")) / "cache.jsonl"
            judge = Judge("bench", base_url=server.base_url, cache_path=cache, concurrency=concurrency,
                          progress=False)
            results = judge.run([JudgeRequest(_messages(i)) for i in range(n)], parse=float)
            assert len(results) == n

        ideal = n * LATENCY / concurrency
        result.append(Case(f"concurrency {concurrency} ({n} calls, ideal {ideal:.2f} s)", raw, judged,
                           baseline_label="raw HTTP posts", units=n, ideal_s=ideal))
    return result
