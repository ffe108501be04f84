"""Streaming JSONL reading with line-numbered errors, and atomic writing (temp file + rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from common.errors import UserError, where


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield `(line_number, record)` for each non-blank line; a bad line raises `UserError` naming it."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where(path, lineno)}: invalid JSON: {exc.msg} (column {exc.colno})") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    return [record for _, record in iter_jsonl(path)]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> int:
    """Write records atomically, one JSON object per line; returns the count."""
    n = 0
    with atomic_open(path) as fh:
        for record in records:
            fh.write(dumps(record) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
