"""Streaming JSONL reading with line-numbered errors, and atomic writing (temp file + rename)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from common.errors import UserError, where
from common.outputs import check_output_file, temp_file_beside

# Every ASCII digit → "0", every other byte → " ": a run of 19 zeros then marks a number orjson might read differently.
_DIGITS = bytes.maketrans(bytes(range(256)), bytes(48 if 48 <= b <= 57 else 32 for b in range(256)))
_LONG_DIGIT_RUN = b"0" * 19
# Types orjson would write where `json` raises: left to `default`, which it lacks, so orjson raises too.
_DUMPS_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`, same result and same errors, about twice as fast: orjson does the common case.

    Where orjson differs from `json` it is not used: it reads integers beyond 64 bits as floats (so a line with 19 or
    more digits in a row goes to `json`), and it rejects what `json` accepts (NaN, Infinity, lone surrogates) or
    reports errors in its own words (so any orjson error is re-parsed by `json`, which returns or raises its own).
    Bytes must be UTF-8 (`UnicodeDecodeError` otherwise): `json` is given them decoded.
    """
    try:
        raw = text.encode() if type(text) is str else text
        if _LONG_DIGIT_RUN not in raw.translate(_DIGITS):
            return orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        pass
    return json.loads(text if type(text) is str else text.decode("utf-8"))


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield `(line_number, record)` for each non-blank line; a bad line raises `UserError` naming it."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        try:
            yield from _records(path, fh, 1)
        except UnicodeDecodeError:  # text mode decodes blocks ahead of the lines: find the line
            raise UserError(_first_undecodable(path)) from None


def _records(path: Path, lines: Iterable[str] | Iterable[bytes], first_line: int) -> Iterator[tuple[int, Any]]:
    """`(line_number, record)` of each non-blank line; bytes lines are read as text mode would read them."""
    for lineno, line in enumerate(lines, first_line):
        if not line or line.isspace():  # blank (`line.strip()` would copy every line)
            continue
        try:
            yield lineno, loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if isinstance(line, bytes):
                try:
                    if line.decode("utf-8").isspace():  # blank in Unicode's sense too
                        continue
                except UnicodeDecodeError as bad:
                    raise UserError(_not_utf8(path, lineno, bad)) from None
            raise UserError(f"{where(path, lineno)}: invalid JSON: {exc.msg} (column {exc.colno})") from None


def _not_utf8(path: Path, lineno: int, bad: UnicodeDecodeError) -> str:
    return f"{where(path, lineno)}: not UTF-8 text ({bad.reason} at byte {bad.start + 1} of the line)"


def _first_undecodable(path: Path) -> str:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return _not_utf8(path, lineno, bad)
    return f"{path}: not UTF-8 text"


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    return [record for _, record in iter_jsonl(path)]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds.

    The file ends up with the mode a plain `open(path, "w")` gives (common/outputs.py): not owner-only.
    """
    path = Path(path)
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(record: Any, *, finite: bool = False) -> str:
    """`record` as one line of compact JSON (`{"a":1}`), by orjson; parsed back it is what `json.dumps` would give.

    Where orjson would write something else, `json.dumps(record, ensure_ascii=False)` (compact too) writes it: NaN
    and Infinity, which orjson writes as null (so a line with a null is searched for them, unless the caller says
    with `finite=True` that it checked every float in `record`), and what orjson refuses (integers beyond 64 bits,
    dict keys that are not str, float subclasses such as numpy's, lone surrogates, dataclasses, datetimes), which
    `json` writes or refuses as it always did. (Enums and UUIDs, which `json` refuses, orjson writes as values.)
    """
    try:
        text = orjson.dumps(record, option=_DUMPS_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    if not finite and b"null" in text and has_non_finite(record):
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.decode()


def has_non_finite(value: Any) -> bool:
    """Whether `value` is, or holds (in dicts, lists, tuples), a float that is NaN or infinite."""
    kind = type(value)
    if kind is float:
        return value - value != 0.0  # nan for nan and ±inf
    if kind is str or kind is int or value is None:
        return False
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return isinstance(value, float) and not math.isfinite(value)
    for item in value:
        kind = type(item)
        if kind is str or kind is int or item is None:  # the usual members, without a call each
            continue
        if kind is float:
            if item - item != 0.0:
                return True
        elif has_non_finite(item):
            return True
    return False


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
