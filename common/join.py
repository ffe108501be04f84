"""Join `swift infer --result_path` predictions to the references they were generated from, and prove the join.

swift infer writes one result per input line, in input order, and drops custom keys such as `meta`; so the n-th
prediction belongs to the n-th reference. The join is verified, line by line, wherever the prediction still carries
something to compare: its media paths (`videos` / `images`) and its `labels` (the reference's last assistant text).
Any difference is a `UserError` naming both lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from common.errors import UserError, where
from common.jsonl import iter_jsonl


@dataclass(frozen=True)
class Pair:
    pred_line: int
    pred: dict[str, Any]
    ref_line: int
    ref: dict[str, Any]


def read_records(path: str | os.PathLike[str], what: str) -> list[tuple[int, dict[str, Any]]]:
    return list(_records(path, what))


def _records(path: str | os.PathLike[str], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise UserError(f"{where(path, lineno)}: expected a JSON object per line ({what})")
        yield lineno, record


def assistant_text(record: dict[str, Any]) -> str | None:
    """Content of the last assistant message (the reference answer), or None."""
    messages = record.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def reference_meta(record: dict[str, Any], ctx: str, task: str, converter: str,
                   labels: tuple[str, ...] = ("fake", "real")) -> dict[str, Any]:
    """A reference's converter `meta`, checked: present, of `task` (absent means `task`), with a label in `labels`."""
    meta = record.get("meta")
    if not isinstance(meta, dict):
        raise UserError(f"{ctx}: no 'meta' object; references must be converter output ({converter})")
    found = meta.get("task", task)
    if found != task:
        raise UserError(f"{ctx}: meta.task is {found!r}, not {task!r}")
    if meta.get("label") not in labels:
        raise UserError(f"{ctx}: meta.label must be {' or '.join(repr(x) for x in labels)} (got {meta.get('label')!r})")
    return meta


def media_paths(record: dict[str, Any], key: str) -> list[str] | None:
    """`videos` / `images` as path strings (swift infer writes images as {"bytes", "path"}); None if absent."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        return None
    paths = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("path")
        if not isinstance(item, str):
            return None
        paths.append(item)
    return paths


def same_path(a: str, b: str) -> bool:
    """Equal paths, allowing for normalisation and for a relative path that the other (absolute) one ends with."""
    if a == b:
        return True
    na, nb = os.path.normpath(a), os.path.normpath(b)
    if na == nb:
        return True
    if os.path.isabs(na) != os.path.isabs(nb):
        absolute, relative = (na, nb) if os.path.isabs(na) else (nb, na)
        if not relative.startswith(".."):
            return absolute.endswith(os.sep + relative)
    return False


def iter_pairs(pred_path: str | os.PathLike[str], ref_path: str | os.PathLike[str],
               verified: dict[str, int]) -> Iterator[Pair]:
    """The pairs in order, each verified as it is read, holding what scoring and reports read: the prediction's
    `response` (its messages, labels and log-probabilities are dropped once checked) and the reference record. Reads
    both files once, in step, so memory does not grow with them. Counts how each pair was verified in `verified`
    (by_media, by_labels, unverified); an empty references file is an error."""
    verified.update(by_media=0, by_labels=0, unverified=0)
    preds, refs = _records(pred_path, "a swift infer result"), _records(ref_path, "a reference sample")
    n = 0
    for pred_item, ref_item in zip_longest(preds, refs):
        if pred_item is None or ref_item is None:
            n_preds = n + (pred_item is not None) + sum(1 for _ in preds)
            n_refs = n + (ref_item is not None) + sum(1 for _ in refs)
            raise UserError(
                f"{pred_path} has {n_preds} predictions but {ref_path} has {n_refs} references; they are joined by "
                f"line order, so they must be swift infer's results for exactly these references (note: swift "
                f"infer appends to an existing --result_path — delete it before re-running)")
        n += 1
        (pl, pred), (rl, ref) = pred_item, ref_item
        yield Pair(pl, {"response": _verified(pred_path, pl, pred, ref_path, rl, ref, verified)}, rl, ref)
    if not n:
        raise UserError(f"{ref_path}: no references (empty file)")


def _verified(pred_path, pl: int, pred: dict[str, Any], ref_path, rl: int, ref: dict[str, Any],
              verified: dict[str, int]) -> Any:
    """The prediction's response, once the prediction is shown to belong to the reference (else a UserError)."""
    if "response" not in pred:
        raise UserError(f"{where(pred_path, pl)}: no 'response' key; predictions must be swift infer "
                        f"--result_path output (keys response, labels, messages, videos, ...)")
    checked = False
    for key in ("videos", "images"):
        p, r = media_paths(pred, key), media_paths(ref, key)
        if p is None or r is None or (not p and not r):
            continue
        if len(p) != len(r) or not all(same_path(x, y) for x, y in zip(p, r, strict=True)):
            raise UserError(f"{where(pred_path, pl)}: {key} {p} differ from {where(ref_path, rl)}: {r}; the "
                            f"predictions are not in the references' order (or come from another file)")
        checked = True
    verified["by_media"] += checked
    labels, answer = pred.get("labels"), assistant_text(ref)
    if isinstance(labels, str) and answer is not None:
        if labels.strip() != answer.strip():
            raise UserError(f"{where(pred_path, pl)}: labels {_clip(labels)!r} differ from the reference answer at "
                            f"{where(ref_path, rl)}: {_clip(answer)!r}; the predictions are not in the "
                            f"references' order (or come from another file)")
        verified["by_labels"] += 1
        checked = True
    verified["unverified"] += not checked
    return pred["response"]


def join(pred_path: str | os.PathLike[str], ref_path: str | os.PathLike[str]) -> tuple[list[Pair], dict[str, int]]:
    """All pairs in order, and how many were verified by media path and by reference text (see `iter_pairs`)."""
    verified: dict[str, int] = {}
    return list(iter_pairs(pred_path, ref_path, verified)), verified


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
