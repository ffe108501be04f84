"""Run benchmarks and print ratios against baselines measured in the same run.

    python bench/run.py                 # every bench/bench_*.py
    python bench/run.py jsonl --scale 0.1 --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import run_case, table  # noqa: E402
from common.errors import UserError, run_cli  # noqa: E402
from common.jsonl import write_json  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(available())}")
    parser.add_argument("--scale", type=float, default=1.0, help="work size multiplier (default 1.0)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side; the median is reported")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        raise UserError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}")
    results = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        for case in module.cases(args.scale):
            print(f"running {name}/{case.name} ...", file=sys.stderr, flush=True)
            result = run_case(case, args.repeat)
            result.name = f"{name}/{case.name}"
            results.append(result)
    print(table(results))
    if args.json:
        write_json(args.json, [{**vars(r), "ratio": r.ratio} for r in results])
    return 0


if __name__ == "__main__":
    run_cli(main)
