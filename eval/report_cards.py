"""Per-sample cards of the evaluation report (eval/report.py), one builder per task.

A builder is `build(pairs, ctx) -> list[card]`; a task module may provide its own as `report_cards(pairs, ctx)`
(it wins over the ones here). A card is a JSON object the page's script renders generically:

    {"title", "media", "truth", "pred" (None = unparseable), "correct" (bool | None), "unparseable",
     "iou", "tdist", "judge" (0-100 / 0-1 numbers or None: filters and sorting), "categories", "source",
     "chips": [[label, text, "good"|"bad"|""]], "frames": [{"src", "caption", "w", "h"}] (from ctx.media),
     "texts": [[title, text]], "raw": [[title, text]]}

`ctx` (`CardContext`) gives the scorer's result (or None), the judge reply cache (`ctx.judge`, or None), the box
convention and `ctx.media`, which writes thumbnails: `frame(video, t, boxes, caption)` / `image(path, boxes, caption)`.
Implemented: deeptrace (frames at the ground-truth and predicted onsets, both boxes, both explanations, judge
score); verdict tasks (FakeClue, DeepfakeJudge detection: real/fake/edited), score tasks (DeepfakeJudge pointwise,
1-5) and choice tasks (DeepfakeJudge pairwise, A/B) read from the generic fields (response vs reference answer,
meta.label, image), so they work without a task module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import UserError, where
from eval.join import Pair, assistant_text, media_paths
from eval.report_media import GT_COLOUR, PRED_COLOUR
from eval.tables import fmt as _fmt

GOOD, BAD = "good", "bad"


@dataclass
class CardContext:
    task: str
    references: str
    result: dict[str, Any] | None = None
    judge: Any = None  # report.JudgeLookup or None
    media: Any = None  # report.MediaWriter
    bbox_format: str | None = None
    compat: bool = False
    notes: list[str] = field(default_factory=list)


def _question(record: dict[str, Any]) -> str | None:
    messages = record.get("messages")
    if not isinstance(messages, list):
        return None
    texts = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") in ("user", "system")
             and isinstance(m.get("content"), str)]
    return "\n\n".join(texts) if texts else None


def _raw(pair: Pair) -> list[list[str]]:
    raw = [["Model output (response)", str(pair.pred.get("response") or "")]]
    answer = assistant_text(pair.ref)
    if answer is not None:
        raw.append(["Reference answer", answer])
    question = _question(pair.ref)
    if question:
        raw.append(["Question", question])
    return raw


def _media_name(record: dict[str, Any]) -> str | None:
    for key in ("videos", "images"):
        paths = media_paths(record, key)
        if paths:
            return paths[0]
    return None


def _thumbs(pair: Pair, ctx: CardContext, caption: str = "") -> list[dict[str, Any]]:
    """A picture of the sample for tasks without localisation: its image, or the middle frame of its video."""
    images = media_paths(pair.ref, "images") or []
    if images:
        return [ctx.media.image(p, [], caption or f"image {k + 1}") for k, p in enumerate(images[:2])]
    videos = media_paths(pair.ref, "videos") or []
    if videos:
        return [ctx.media.frame(videos[0], None, [], caption or "middle frame")]
    return []


# --- deeptrace ------------------------------------------------------------------------------------------------------


def deeptrace_cards(pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    from eval import deeptrace as D
    from prompts.deeptrace import FAKE

    cards = []
    for pair in pairs:
        ref = D.read_reference(pair.ref, where(ctx.references, pair.ref_line), ctx.bbox_format)
        row = D.score_response(pair.pred.get("response"), ref, strict=ctx.compat)
        guess, parsed = row.guess, row.answer
        truth = ref.truth
        fake = truth.label == FAKE
        said_fake = guess.label == FAKE
        meta = pair.ref.get("meta") or {}

        chips = []
        judge = None
        if fake:
            iou, dist, tdist = 100 * row.iou, 100 * row.dist, 100 * row.tdist
            chips += [["IoU", _fmt(iou), GOOD if iou >= 50 else BAD],
                      ["BBox dist.", _fmt(dist), ""],
                      ["Time dist.", _fmt(tdist), GOOD if tdist <= 10 else BAD]]
            if row.tiou is not None:
                chips.append(["Time IoU", _fmt(100 * row.tiou), ""])
            if truth.explanation is not None and ctx.judge is not None:
                judge, why = ctx.judge.deeptrace(truth.explanation, guess.explanation if said_fake else None)
                chips.append(["Judge", why,
                              "" if judge is None else (GOOD if judge >= 1 else BAD if judge == 0 else "")])
            elif truth.explanation is None:
                chips.append(["Judge", "no GT explanation", ""])
        else:
            iou = dist = tdist = None
        if row.issues:
            chips.append(["Parse", ", ".join(row.issues), BAD])

        videos = media_paths(pair.ref, "videos") or []
        video = videos[0] if videos else None
        gt_box = truth.box if fake else None
        pred_box = guess.box if said_fake else None
        boxes = [(gt_box, GT_COLOUR), (pred_box, PRED_COLOUR)]
        frames = []
        if video is not None:
            if fake:
                frames.append(ctx.media.frame(video, truth.start, boxes,
                                              f"ground-truth onset {truth.start:.2f} s"))
            if said_fake and guess.start is not None:
                frames.append(ctx.media.frame(video, guess.start, boxes, f"predicted onset {guess.start:.2f} s"))
            elif said_fake:
                frames.append(ctx.media.frame(video, truth.start if fake else None, boxes,
                                              "no predicted onset" + (" (GT onset frame)" if fake else
                                                                      " (middle frame)")))
            if not frames:
                frames.append(ctx.media.frame(video, None, [], "middle frame"))

        texts = []
        if fake:
            texts.append(["Ground-truth explanation", truth.explanation or "(none)"])
        if said_fake or fake:
            texts.append(["Predicted explanation", (guess.explanation if said_fake else None) or "(none)"])
        where_text = []
        if fake:
            where_text.append(f"GT box {_box_text(meta.get('bbox'))} from {truth.start:.2f} s"
                              + (f" to {truth.end:.2f} s" if truth.end is not None else ""))
        if said_fake:
            where_text.append(f"predicted box {_box_text(parsed.box)} ({ref.answer_format.name}) from "
                              f"{'–' if guess.start is None else f'{guess.start:.2f} s'}"
                              + (f" to {guess.end:.2f} s" if guess.end is not None else ""))
        if where_text:
            texts.append(["Where / when", "; ".join(where_text)])

        title = str(meta.get("video_id") or video or f"line {pair.ref_line}")
        if meta.get("trace_id"):
            title += f" · trace {meta['trace_id']}"
        cards.append({
            "title": title, "media": video, "truth": truth.label, "pred": guess.label,
            "correct": guess.label == truth.label, "unparseable": guess.label is None,
            "iou": iou, "tdist": tdist, "judge": judge,
            "categories": list(ref.categories) or (["(none)"] if fake else []), "source": ref.source,
            "chips": chips, "frames": frames, "texts": texts, "raw": _raw(pair),
        })
    return cards


def _box_text(box: Any) -> str:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return "–"
    return "[" + ", ".join(f"{v:g}" if isinstance(v, (int, float)) else "?" for v in box) + "]"


# --- verdicts, scores and choices from the generic fields -----------------------------------------------------------

_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.I | re.S)
_SCORE_TAG = re.compile(r"<score>\s*([0-9]+(?:\.[0-9]+)?)\s*</score>", re.I)
_VERDICT_WORD = re.compile(r"\b(fake|real|edited)\b", re.I)


def _task_parser(module: str, name: str) -> Callable[[Any], Any] | None:
    """The scorer's own parser where its module exists (so cards agree with the metrics), else None."""
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return None


def _parsed(module: str, name: str, attr: str, text: Any) -> tuple[bool, Any, str | None]:
    """(found the parser, value, issue) with the task's parser `module.name(text).attr`."""
    parser = _task_parser(module, name)
    if parser is None:
        return False, None, None
    try:
        result = parser(text)
    except Exception:  # a parser still being written must not break the report
        return False, None, None
    return True, getattr(result, attr, None), getattr(result, "issue", None)


def read_verdict(text: Any) -> str | None:
    """`<answer>real|fake|edited</answer>`, else the first of the words fake / real / edited (FakeClue's
    "This is a fake image."); None if neither. A fallback: the task modules' parsers are used where they exist."""
    if not isinstance(text, str):
        return None
    m = _ANSWER_TAG.search(text)
    if m and m.group(1).lower() in ("real", "fake", "edited"):
        return m.group(1).lower()
    m = _VERDICT_WORD.search(text)
    return m.group(1).lower() if m else None


def read_score(text: Any) -> float | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        return None
    m = _SCORE_TAG.search(text)
    return float(m.group(1)) if m else None


def read_choice(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    m = _ANSWER_TAG.search(text)
    return m.group(1).upper() if m and m.group(1).upper() in ("A", "B") else None


def _truth_label(meta: dict[str, Any], answer: str | None) -> str | None:
    label = meta.get("label")
    if isinstance(label, bool):
        label = None
    if isinstance(label, int):  # FakeClue's raw labels: 0 = fake, 1 = real
        label = {0: "fake", 1: "real"}.get(label)
    if isinstance(label, str) and label.lower() in ("fake", "real", "edited"):
        return label.lower()
    return read_verdict(answer)


def _same_verdict(truth: str | None, pred: str | None) -> bool:
    fake = ("fake", "edited")  # edited counts as fake (DeepfakeJudge detection; SPEC §6)
    return truth is not None and pred is not None and (truth == pred or (truth in fake and pred in fake))


def _generic(pair: Pair, ctx: CardContext, truth: Any, pred: Any, correct: bool | None,
             chips: list[list[str]]) -> dict[str, Any]:
    meta = pair.ref.get("meta") if isinstance(pair.ref.get("meta"), dict) else {}
    cate = meta.get("cate", meta.get("categories"))
    categories = [cate] if isinstance(cate, str) else [c for c in cate if isinstance(c, str)] \
        if isinstance(cate, list) else []
    media = _media_name(pair.ref)
    title = str(meta.get("id") or meta.get("image_id") or meta.get("video_id") or media or f"line {pair.ref_line}")
    texts = [["Reference answer", assistant_text(pair.ref) or "(none)"],
             ["Model output", str(pair.pred.get("response") or "")]]
    return {"title": title, "media": media, "truth": None if truth is None else str(truth),
            "pred": None if pred is None else str(pred), "correct": correct, "unparseable": pred is None,
            "iou": None, "tdist": None, "judge": None, "categories": categories,
            "source": meta.get("source") if isinstance(meta.get("source"), str) else None,
            "chips": chips, "frames": _thumbs(pair, ctx), "texts": texts, "raw": _raw(pair)}


def _issue_chip(issue: str | None) -> list[list[str]]:
    return [["Parse", str(issue), BAD]] if issue else []


def verdict_cards(pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    if ctx.task == "fakeclue":
        module, name, attr = "eval.fakeclue", "parse_verdict", "label"
    else:
        module, name, attr = "prompts.deepfakejudge", "parse_label", "value"
    cards = []
    for pair in pairs:
        meta = pair.ref.get("meta") if isinstance(pair.ref.get("meta"), dict) else {}
        truth = _truth_label(meta, assistant_text(pair.ref))
        response = pair.pred.get("response")
        found, pred, issue = _parsed(module, name, attr, response)
        if not found:
            pred, issue = read_verdict(response), None if read_verdict(response) else "no verdict"
        correct = _same_verdict(truth, pred) if truth is not None else None
        cards.append(_generic(pair, ctx, truth, pred, correct, _issue_chip(issue)))
    return cards


def score_cards(pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    cards = []
    for pair in pairs:
        meta = pair.ref.get("meta") if isinstance(pair.ref.get("meta"), dict) else {}
        truth = read_score(meta.get("score")) if meta.get("score") is not None else read_score(
            assistant_text(pair.ref))
        found, pred, issue = _parsed("prompts.deepfakejudge", "parse_score", "value", pair.pred.get("response"))
        if found:
            pred = None if pred is None else float(pred)
        else:
            pred = read_score(pair.pred.get("response"))
            issue = None if pred is not None else "no score"
        chips = _issue_chip(issue)
        if truth is not None and pred is not None:
            error = abs(pred - truth)
            chips.append(["|error|", f"{error:g}", GOOD if error == 0 else BAD if error >= 2 else ""])
        card = _generic(pair, ctx, _num(truth), _num(pred), None if truth is None or pred is None else truth == pred,
                        chips)
        cards.append(card)
    return cards


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def choice_cards(pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    cards = []
    for pair in pairs:
        meta = pair.ref.get("meta") if isinstance(pair.ref.get("meta"), dict) else {}
        truth = next((str(meta[k]).upper() for k in ("choice", "preferred", "winner")
                      if isinstance(meta.get(k), str) and str(meta[k]).upper() in ("A", "B")), None)
        truth = truth or read_choice(assistant_text(pair.ref))
        found, pred, issue = _parsed("prompts.deepfakejudge", "parse_choice", "value", pair.pred.get("response"))
        if not found:
            pred = read_choice(pair.pred.get("response"))
            issue = None if pred is not None else "no choice"
        cards.append(_generic(pair, ctx, truth, pred, None if truth is None else truth == pred, _issue_chip(issue)))
    return cards


def auto_cards(pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    """Unknown task: scores if the reference answers carry <score>, choices if <answer>A|B</answer>, else verdicts."""
    answers = [assistant_text(p.ref) or "" for p in pairs[:50]]
    if any(_SCORE_TAG.search(a) for a in answers):
        return score_cards(pairs, ctx)
    if any(read_choice(a) for a in answers):
        return choice_cards(pairs, ctx)
    return verdict_cards(pairs, ctx)


BUILDERS: dict[str, Callable[[list[Pair], CardContext], list[dict[str, Any]]]] = {
    "deeptrace": deeptrace_cards,
    "fakeclue": verdict_cards,
    "dfj-detect": verdict_cards,
    "dfj-pointwise": score_cards,
    "dfj-pairwise": choice_cards,
}

# confusion-matrix axis order (others follow, sorted)
LABEL_ORDER = ["fake", "edited", "real", "A", "B", "1", "2", "3", "4", "5"]


def builder_for(task: str, module: Any = None) -> Callable[[list[Pair], CardContext], list[dict[str, Any]]]:
    hook = getattr(module, "report_cards", None) if module is not None else None
    if callable(hook):
        return hook
    return BUILDERS.get(task, auto_cards)


def build_cards(task: str, module: Any, pairs: list[Pair], ctx: CardContext) -> list[dict[str, Any]]:
    cards = builder_for(task, module)(pairs, ctx)
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
