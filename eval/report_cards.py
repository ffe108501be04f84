"""Per-sample cards of the evaluation report (eval/report.py): the card's shape and the parts every task shares.

Each task module builds its cards from its own scorer's per-sample rows — `report_cards(samples, pairs, ctx)` in
eval/deeptrace.py, eval/fakeclue.py, eval/dfj.py — so a card always agrees with the metrics and nothing is parsed or
scored twice. A card is a JSON object the page's script renders generically:

    {"title", "media", "truth", "pred" (None = unparseable), "correct" (bool | None), "unparseable",
     "iou", "tdist", "judge" (0-100 / 0-1 numbers or None: filters and sorting), "categories", "source",
     "chips": [[label, text, "good"|"bad"|""]], "frames": [{"src", "caption", "w", "h"}] (from ctx.media),
     "texts": [[title, text]], "raw": [[title, text]]}

`ctx` (`CardContext`) gives the scorer's result, the judge reply cache the report found (`judge_cache`, or None; the
task reads its own judge scores from it) and `ctx.media`, which writes thumbnails:
`frame(video, t, boxes, caption)` / `image(path, boxes, caption)`. A task may add lines to `ctx.notes` (shown at the
top of the report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.join import Pair, assistant_text, media_paths

GOOD, BAD = "good", "bad"
# confusion-matrix axis order (others follow, sorted)
LABEL_ORDER = ["fake", "edited", "real", "A", "B", "1", "2", "3", "4", "5"]


@dataclass
class CardContext:
    task: str
    references: str
    result: dict[str, Any] | None = None
    media: Any = None  # report.MediaWriter
    judge_cache: Path | None = None
    judge_model: str | None = None
    judge_params: dict[str, Any] | None = None  # the sampling parameters score.py's judge used (metrics' judge.params)
    notes: list[str] = field(default_factory=list)


def _question(record: dict[str, Any]) -> str | None:
    messages = record.get("messages")
    if not isinstance(messages, list):
        return None
    texts = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") in ("user", "system")
             and isinstance(m.get("content"), str)]
    return "\n\n".join(texts) if texts else None


def raw_texts(pair: Pair) -> list[list[str]]:
    """The card's raw texts: the model output, the reference answer, the question."""
    raw = [["Model output (response)", str(pair.pred.get("response") or "")]]
    answer = assistant_text(pair.ref)
    if answer is not None:
        raw.append(["Reference answer", answer])
    question = _question(pair.ref)
    if question:
        raw.append(["Question", question])
    return raw


def media_name(record: dict[str, Any]) -> str | None:
    for key in ("videos", "images"):
        paths = media_paths(record, key)
        if paths:
            return paths[0]
    return None


def thumbs(pair: Pair, ctx: CardContext, caption: str = "") -> list[dict[str, Any]]:
    """A picture of the sample for tasks without localisation: its image, or the middle frame of its video."""
    images = media_paths(pair.ref, "images") or []
    if images:
        return [ctx.media.image(p, [], caption or f"image {k + 1}") for k, p in enumerate(images[:2])]
    videos = media_paths(pair.ref, "videos") or []
    if videos:
        return [ctx.media.frame(videos[0], None, [], caption or "middle frame")]
    return []


def issue_chip(issue: str | None) -> list[list[str]]:
    return [["Parse", str(issue), BAD]] if issue else []


def meta_of(pair: Pair) -> dict[str, Any]:
    meta = pair.ref.get("meta")
    return meta if isinstance(meta, dict) else {}


def plain_card(pair: Pair, ctx: CardContext, truth: Any, pred: Any, correct: bool | None,
               chips: list[list[str]]) -> dict[str, Any]:
    """A card for a task without localisation: the image (or middle frame), true vs read value, both texts."""
    meta = meta_of(pair)
    cate = meta.get("cate", meta.get("categories"))
    categories = [cate] if isinstance(cate, str) else [c for c in cate if isinstance(c, str)] \
        if isinstance(cate, list) else []
    media = media_name(pair.ref)
    title = str(meta.get("id") or meta.get("image_id") or meta.get("video_id") or media or f"line {pair.ref_line}")
    texts = [["Reference answer", assistant_text(pair.ref) or "(none)"],
             ["Model output", str(pair.pred.get("response") or "")]]
    return {"title": title, "media": media, "truth": None if truth is None else str(truth),
            "pred": None if pred is None else str(pred), "correct": correct, "unparseable": pred is None,
            "iou": None, "tdist": None, "judge": None, "categories": categories,
            "source": meta.get("source") if isinstance(meta.get("source"), str) else None,
            "chips": chips, "frames": thumbs(pair, ctx), "texts": texts, "raw": raw_texts(pair)}


def checked(cards: list[dict[str, Any]], pairs: list[Pair], task: str) -> list[dict[str, Any]]:
    """The cards with their index and line, non-finite numbers blanked; one card per sample or an error."""
    if len(cards) != len(pairs):
        raise UserError(f"report: the {task} card builder returned {len(cards)} cards for {len(pairs)} samples")
    for i, (card, pair) in enumerate(zip(cards, pairs, strict=True)):
        card.setdefault("i", i)
        card.setdefault("line", pair.ref_line)
        for key in ("iou", "tdist", "judge"):
            value = card.get(key)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                card[key] = None
    return cards
