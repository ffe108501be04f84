"""Checks on `swift infer` result files shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

from common.jsonl import read_jsonl


def media_of(row: dict) -> list[str]:
    """Media paths of an input row or a `swift infer` result row (which wraps images as {path, bytes})."""
    images = [i["path"] if isinstance(i, dict) else i for i in row.get("images") or []]
    return images + list(row.get("videos") or [])


def assert_results_follow_inputs(results: list[dict] | Path, inputs: Path, *, nonempty: bool = True) -> None:
    """One result per input, in input order (same media, same reference answer); responses are strings."""
    rows = read_jsonl(results) if isinstance(results, Path) else results
    refs = read_jsonl(inputs)
    assert len(rows) == len(refs)
    for row, ref in zip(rows, refs, strict=True):
        assert media_of(row) == media_of(ref)
        assert row["labels"] == ref["messages"][-1]["content"]
        assert isinstance(row["response"], str)
        if nonempty:
            assert row["response"] != ""
