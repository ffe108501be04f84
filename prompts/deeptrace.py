"""DeeptraceReward answer codec: the question, the answer a model is trained on (`render`), and what is read back
from any generation (`parse`), with the box conventions, the rounding rule and the time format in one place.

Question: the paper's text (prompts/deeptrace/question.txt, sec. 3.2). The paper does not print the ablation prompts;
ours drop exactly the clause that asks for what the answer no longer contains (ABLATION_QUESTIONS). When the box
convention is not source pixels (the paper's "absolute values"), the question says which unit it expects.

Answer (sec. 3.2): `FAKE. The video is AI-generated. The unnatural part is at [x0, y0, x1, y1] starting T seconds.
The reason is because E` / `REAL. The video is real. There is no unnatural part.` The four supervision variants drop
the time clause, the reason sentence, or both; a trace without an explanation gets no reason sentence.

Rounding (one rule, `quantize`): a number is written rounded half up on its decimal value (10.5 -> 11, 0.25 -> 0.3,
0.1235 -> 0.124): box coordinates to whole pixels / whole 0-1000 grid steps / 3 decimals of the frame (norm1), the
onset to 0.1 s (the resolution VideoLLaMA3 timestamps frames with). The scorer scores a model against what its
training answer said (the rounded numbers), so an output identical to its reference answer scores exactly 100.

Parsing (`parse`, never raises): reasoning (`<think>`) is set aside and `<answer>` tags are read first
(prompts/reasoning.py); the exact SFT answer is read by its grammar; the App. E zero-shot tag format and, unless
`strict`, common other spellings of box and time are read by rules listed in eval/README.md. The verdict of any other
text is read by the free-text rules every codec shares (prompts/verdict_text.py) with this format's words
(`VOCABULARY`): the markers FAKE / REAL first, then (unless `strict`) the shared words (fake, AI-generated,
synthetic, manipulated, deepfake, … / real, authentic, genuine) and a bare "generated". Refusals, hedges ("I can't
determine whether it is real") and negations that may or may not reach the verdict word are unparseable, never a
verdict. A time given in frames is returned as `start_frame` / `end_frame` (the scorer converts it with the video's
fps). Numbers are returned as written, in the box convention of the answer; `to_ratio` turns them into fractions of
the frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from prompts import load, verdict_text
from prompts.reasoning import UNFINISHED, final_answer

FAKE, REAL = "fake", "real"
VARIANTS = ("full", "no_time", "no_explanation", "no_time_no_explanation")
TIMED = frozenset(("full", "no_explanation"))  # variants whose answer states the onset
EXPLAINED = frozenset(("full", "no_time"))  # variants whose answer gives the reason

Box = tuple[float, float, float, float]

# --- box conventions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxFormat:
    """A box convention: how `[x0, y0, x1, y1]` in an answer relates to the frame."""

    name: str
    scale: float | None  # answer units across the whole frame width/height; None = source pixels (the frame's size)
    decimals: int  # digits written after the decimal point
    unit: str  # what the question adds after "[x0, y0, x1, y1] format" ("" = the paper's question)
    description: str


BOX_FORMATS: dict[str, BoxFormat] = {f.name: f for f in (
    BoxFormat("pixels", None, 0, "",
              "whole pixels of the source video (the paper's absolute values)"),
    BoxFormat("norm1000", 1000.0, 0, " on a 0-1000 grid of the frame (0 is the left or top edge, 1000 the right or "
              "bottom edge)", "a 0-1000 grid of the frame, whole numbers (Qwen2-VL / VideoLLaMA3 style)"),
    BoxFormat("norm1", 1.0, 3, " as fractions of the frame width and height (0 to 1, three decimals)",
              "fractions of the frame width and height, 3 decimals"),
)}
BOX_FORMAT_NAMES = tuple(BOX_FORMATS)  # the argparse choices of every tool
# Earlier converters wrote `abs` into meta.answer_bbox_format; existing data files are read with this one alias.
_OLD_NAMES = {"abs": "pixels"}


def box_format(name: object) -> BoxFormat | None:
    """The convention a data file's meta names (a current name, or an earlier converter's spelling), else None."""
    if not isinstance(name, str):
        return None
    name = name.strip().lower()
    return BOX_FORMATS.get(_OLD_NAMES.get(name, name))


def box_formats_help() -> str:
    return "; ".join(f"{f.name} = {f.description}" for f in BOX_FORMATS.values())


def _format(fmt: str | BoxFormat) -> BoxFormat:
    if isinstance(fmt, BoxFormat):
        return fmt
    found = BOX_FORMATS.get(fmt)
    if found is None:
        raise ValueError(f"unknown box format {fmt!r}; choose from {', '.join(BOX_FORMAT_NAMES)}")
    return found


def answer_box(box: Sequence[float], fmt: str | BoxFormat, width: float, height: float) -> Box:
    """A box in source pixels → the answer's convention (not yet rounded)."""
    f = _format(fmt)
    x0, y0, x1, y1 = (float(v) for v in box)
    if f.scale is None:
        return (x0, y0, x1, y1)
    sx, sy = f.scale / width, f.scale / height
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def to_ratio(box: Sequence[float], fmt: str | BoxFormat, width: float | None = None,
             height: float | None = None) -> Box:
    """A box in the answer's convention → fractions of the frame (x/W, y/H). Pixels need the frame's size."""
    f = _format(fmt)
    x0, y0, x1, y1 = (float(v) for v in box)
    if f.scale is None:
        if not width or not height:
            raise ValueError("pixel boxes need the frame width and height")
        return (x0 / width, y0 / height, x1 / width, y1 / height)
    return (x0 / f.scale, y0 / f.scale, x1 / f.scale, y1 / f.scale)


def inside_frame(ratio_box: Sequence[float], tolerance: float = 1e-9) -> bool:
    """Whether a box in frame fractions lies within the frame (edges included)."""
    return all(-tolerance <= v <= 1.0 + tolerance for v in ratio_box)


# --- the rounding rule and the number format ----------------------------------------------------------------------

TIME_DECIMALS = 1


def quantize(value: float, decimals: int) -> float:
    """`value` rounded half up on its decimal value (as `repr` writes it): 10.5 -> 11, 0.25 -> 0.3, 0.1235 -> 0.124.

    Binary floats make `round()` and `format()` round some decimal halves down (`f"{0.35:.1f}"` is "0.3") and others
    up; answers round every half the same way, whatever the convention.

    `round()` gives the same number wherever the value is not within a hair of a half (its binary and its `repr`
    value then round the same way), and costs a fifth of `Decimal`: the converters write an answer per trace.
    """
    value = float(value)
    scaled = abs(value) * (_TENS[decimals] if 0 <= decimals < len(_TENS) else 10.0**decimals)
    if abs(scaled % 1.0 - 0.5) > 1e-9 * (1.0 + scaled):  # False for inf and nan, which go on to Decimal
        return round(value, decimals) + 0.0  # + 0.0: -0.0 -> 0.0
    try:
        exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # inf / nan: nothing to round
        return value
    return float(exact) + 0.0


_TENS = tuple(10.0**d for d in range(10))
_FIXED = tuple(f"{{:.{d}f}}".format for d in range(10))  # "{:.3f}".format, ...


def number_text(value: float, decimals: int) -> str:
    """`value` written with `decimals` decimals, rounded by `quantize`'s rule."""
    if 0 <= decimals < len(_FIXED):
        fixed = _FIXED[decimals]
        scaled = value * _TENS[decimals]
        if value > 0 and abs(scaled % 1.0 - 0.5) > 1e-9 * (1.0 + scaled):
            return fixed(value)  # away from a half, formatting rounds as `quantize` does (and writes no "-0")
    else:
        fixed = f"{{:.{decimals}f}}".format
    return fixed(quantize(value, decimals))


def quantize_box(box: Sequence[float], fmt: str | BoxFormat) -> Box:
    """The box as its answer writes it (answer units, rounded by the rule)."""
    d = _format(fmt).decimals
    return tuple(quantize(v, d) for v in box)  # type: ignore[return-value]


def format_bbox(box: Sequence[float], fmt: str | BoxFormat = "pixels") -> str:
    """`[x0, y0, x1, y1]` in the answer's convention, rounded by the rule."""
    d = _format(fmt).decimals
    return "[" + ", ".join([number_text(v, d) for v in box]) + "]"


def format_time(seconds: float) -> str:
    return number_text(seconds, TIME_DECIMALS)


# --- the question ----------------------------------------------------------------------------------------------------

QUESTION = load("deeptrace/question.txt")
ZERO_SHOT_FILE = "deeptrace/zero_shot.txt"
ZERO_SHOT = load(ZERO_SHOT_FILE)  # the paper's App. E prompt, byte-exact
_FORMAT = "in [x0, y0, x1, y1] format"
_ASK = f"{_FORMAT}, the starting time of them, and an explanation."
ABLATION_QUESTIONS = {
    "full": _ASK,
    "no_time": f"{_FORMAT}, and an explanation.",
    "no_explanation": f"{_FORMAT}, and the starting time of them.",
    "no_time_no_explanation": f"{_FORMAT}.",
}
assert QUESTION.endswith(_ASK)


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return variant


def question(variant: str = "full", box_format: str = "pixels") -> str:
    """The SFT question of `variant`; for a box convention other than pixels it says which unit to answer in."""
    check_variant(variant)
    ask = ABLATION_QUESTIONS[variant].replace(_FORMAT, _FORMAT + _format(box_format).unit, 1)
    return QUESTION[: -len(_ASK)] + ask


# --- rendering ---------------------------------------------------------------------------------------------------

REAL_ANSWER = "REAL. The video is real. There is no unnatural part."
FAKE_PREFIX = "FAKE. The video is AI-generated."


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def fake_answers(box: Sequence[float], start: float, explanation: str | None, variants: Sequence[str],
                 box_format: str = "pixels") -> list[str]:
    """The FAKE answer of one trace for each of `variants` (the shared parts formatted once). `box` is in the
    answer's convention (`answer_box` converts source pixels); numbers are rounded by the rule."""
    for variant in variants:
        check_variant(variant)
    head = f"{FAKE_PREFIX} The unnatural part is at {format_bbox(box, box_format)}"
    timed = f"{head} starting {format_time(start)} seconds."
    explanation = _clean(explanation)
    reason = f" The reason is because {explanation}" if explanation else ""
    return [(timed if v in TIMED else head + ".") + (reason if v in EXPLAINED else "") for v in variants]


def fake_answer(box: Sequence[float], start: float, explanation: str | None, variant: str = "full",
                box_format: str = "pixels") -> str:
    """The paper's FAKE answer for one trace, minus what the ablation `variant` removes."""
    return fake_answers(box, start, explanation, (variant,), box_format)[0]


# --- what is read back -----------------------------------------------------------------------------------------------

# Issues: what made a generation, or a part of it, unreadable. The verdict's are the shared free-text reader's
# (prompts/verdict_text.py: empty, no verdict, ambiguous verdict, refusal, hedge, negated verdict, unfinished
# reasoning); the others are this format's parts missing from a FAKE answer.
EMPTY, NO_VERDICT, AMBIGUOUS = verdict_text.EMPTY, verdict_text.NO_VERDICT, verdict_text.AMBIGUOUS
REFUSAL, HEDGE, NEGATED = verdict_text.REFUSAL, verdict_text.HEDGE, verdict_text.NEGATED
NO_BOX = "fake without box"
NO_START = "fake without start time"
NO_EXPLANATION = "fake without explanation"
ISSUES = (*verdict_text.ISSUES, NO_BOX, NO_START, NO_EXPLANATION)
FRAMES = "time in frames"  # a note: the onset was given as a frame number (see Answer.start_frame)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a generation says. Localisation and explanation are only read from a FAKE verdict."""

    label: str | None  # FAKE | REAL | None (unparseable)
    box: Box | None = None  # as written, in the answer's box convention
    start: float | None = None  # seconds
    end: float | None = None  # seconds, only when the generation states one
    explanation: str | None = None  # whitespace-normalised
    start_frame: float | None = None  # the onset given as a frame number instead of seconds ("starting at frame 12")
    end_frame: float | None = None
    issues: tuple[str, ...] = ()  # from ISSUES
    notes: tuple[str, ...] = ()  # what was set aside or read on the way (prompts/reasoning.py notes, FRAMES)


def render(answer: Answer, box_format: str = "pixels") -> str:
    """The SFT answer text saying what `answer` says (the inverse of `parse` for answers holding rounded numbers):
    the time clause when it has a start, the reason sentence when it has an explanation."""
    if answer.label == REAL:
        return REAL_ANSWER
    if answer.label != FAKE or answer.box is None:
        raise ValueError("only REAL, or FAKE with a box, has an SFT answer")
    variant = {(True, True): "full", (False, True): "no_time", (True, False): "no_explanation",
               (False, False): "no_time_no_explanation"}[(answer.start is not None, bool(answer.explanation))]
    return fake_answer(answer.box, answer.start or 0.0, answer.explanation, variant, box_format)


def expected_issues(answer: Answer) -> tuple[str, ...]:
    """The issues `parse` reports for a FAKE answer that lacks some parts (for round trips)."""
    if answer.label != FAKE:
        return ()
    return tuple(issue for issue, missing in ((NO_BOX, answer.box is None), (NO_START, answer.start is None),
                                              (NO_EXPLANATION, not answer.explanation)) if missing)


# --- patterns ------------------------------------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})"
_SEP = r"\s*[,;]\s*|\s+"
_BOX4 = rf"({_NUM})(?:{_SEP})({_NUM})(?:{_SEP})({_NUM})(?:{_SEP})({_NUM})"
_BRACKET_BOX = re.compile(rf"\[\s*{_BOX4}\s*\]")
_PAREN_BOX = re.compile(rf"\(\s*{_BOX4}\s*\)")
_BARE_BOX = re.compile(_BOX4)
_POINT_PAIR = rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*(?:,|to|-)?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*(?:{_POINT_PAIR}|\[\s*{_BOX4}\s*\])\s*<\|box_end\|>")
_PAIR_BOX = re.compile(_POINT_PAIR)


def _tag(name: str) -> re.Pattern[str]:
    # Closed tag, or an unclosed one running to the next tag / the end (generations get cut off).
    return re.compile(rf"<\s*{name}\s*>(.*?)(?:<\s*/\s*{name}\s*>|(?=<\s*/?\s*[a-z_]+\s*>)|\Z)", re.S | re.I)


_TAG_COORDS = _tag("coordinates")
_TAG_START = _tag("start_time")
_TAG_END = _tag("end_time")
_TAG_EXPL = _tag("explanation")

# A time: h:mm:ss / m:ss(.f), or a number with an optional unit (unitless = seconds).
_UNIT = r"milliseconds?|millisecs?|msecs?|ms|minutes?|mins?|seconds?|secs?|sec\.|s"
_CLOCK = r"(?:\d{1,6}:)?\d{1,6}:\d{1,2}(?:\.\d{1,9})?"
_TIME = rf"{_CLOCK}|(?:\d{{1,12}}(?:\.\d{{0,12}})?|\.\d{{1,12}})(?:\s*(?:{_UNIT})(?![a-z]))?"
_TIME_RE = re.compile(rf"(?<![\w.])({_TIME})", re.I)
_NOT_TIME_AFTER = re.compile(r"\s*(?:frames?\b|fps\b|px\b|pixels?\b|%|x\s*\d|,\s*\d)", re.I)
_NOT_TIME_BEFORE = re.compile(r"\bframes?\s*(?:#|no\.?|number)?\s*\Z", re.I)  # "frame 12" is a frame number
_NUMBER_UNIT = re.compile(rf"({_NUM})\s*({_UNIT})?\s*\Z", re.I)
_HAS_UNIT = re.compile(r"[a-z:]", re.I)
_EXPL_TAGS = re.compile(r"<\s*/?\s*explanation\s*>", re.I)
_RANGE_SEP = r"\s*(?:-|–|—|to|until|till|and)\s*"

_STRICT_START = re.compile(rf"\bstarting\s+(?:at\s+|from\s+)?({_TIME})", re.I)
_START_PHRASES = [
    re.compile(rf"\b(?:from|between)\s+({_TIME}){_RANGE_SEP}({_TIME})", re.I),
    re.compile(rf"\b(?:start(?:s|ing|ed)?|begin(?:s|ning)?|onset|appear(?:s|ing)?)\b(?:\s+(?:time|at|from|is|around|"
               rf"about|approximately|roughly|the|second|timestamp|of|:))*\s*:?\s*({_TIME})", re.I),
    re.compile(rf"(?<![\w.])({_TIME}){_RANGE_SEP}({_TIME})(?=\s*(?:seconds?|secs?|s)\b)", re.I),
    re.compile(rf"\bat\s+(?:around\s+|about\s+)?({_CLOCK}|(?:\d{{1,12}}(?:\.\d{{0,12}})?|\.\d{{1,12}})\s*"
               rf"(?:{_UNIT})(?![a-z]))", re.I),
]
_END_PHRASES = [
    re.compile(rf"\b(?:end(?:s|ing|ed)?|until|till|lasting\s+until|stop(?:s|ping)?)\b(?:\s+(?:time|at|is|around|"
               rf"about|approximately|:))*\s*:?\s*({_TIME})", re.I),
]
# Times given in frames: "starting at frame 12", "from frame 12 to frame 30", "12 frames in", "<start_time>frame 12".
_FRAME_NUMBER = r"(\d{1,9})"
_FRAME_WORD = rf"\bframes?\s*(?:#|no\.?|number)?\s*{_FRAME_NUMBER}\b"
_FRAME_START = [
    re.compile(rf"\b(?:start(?:s|ing|ed)?|begin(?:s|ning)?|onset|appear(?:s|ing)?|from|between|at)\b"
               rf"(?:\s+(?:at|from|around|about|approximately|roughly|the|is|in|on))*\s*:?\s*{_FRAME_WORD}", re.I),
    re.compile(rf"(?<![\w.]){_FRAME_NUMBER}\s*frames?\s+in\b", re.I),
]
_FRAME_END = re.compile(rf"\b(?:to|until|till|and|end(?:s|ing|ed)?(?:\s+at)?|stop(?:s|ping)?(?:\s+at)?)\s+"
                        rf"(?:the\s+)?{_FRAME_WORD}", re.I)
_FRAME_IN_TAG = re.compile(rf"^\s*(?:at\s+)?{_FRAME_WORD}|^\s*{_FRAME_NUMBER}\s*frames?\b", re.I)

# An explanation runs to the end of the text, or to a verdict marker after it ("Reasoning: ... Answer: FAKE ...").
_EXPL_END = r"(?=\s*(?:\*\*)?\b(?:final\s+answer|answer|verdict|label|prediction)\s*(?:\*\*)?\s*[:：])|\Z"
_STRICT_EXPL = re.compile(r"\bThe reason is because\b\s*(.*)", re.S)
_EXPL_PHRASES = [
    _STRICT_EXPL,
    re.compile(rf"\b(?:the\s+)?reason\s+is(?:\s+because|\s+that)?\s*:?\s*(.*?)(?:{_EXPL_END})", re.S | re.I),
    re.compile(rf"\b(?:explanation|reason(?:ing)?|rationale)\s*:\s*(.*?)(?:{_EXPL_END})", re.S | re.I),
]

_SFT_FAKE = re.compile(rf"\s*FAKE\. The video is AI-generated\. The unnatural part is at \[\s*{_BOX4}\s*\]"
                       r"(?: starting (\d{1,12}(?:\.\d{1,12})?) seconds)?\.(?: The reason is because (.*))?\Z", re.S)
_SPECIAL_TAIL = re.compile(r"(?:\s*(?:<\|[A-Za-z0-9_]{1,40}\|>|</s>|<eos>|<end_of_turn>))+\s*\Z")
# The verdict words of free text: the answer's markers FAKE / REAL first, then the shared words and a bare "generated"
# ("the video was generated by Sora").
VOCABULARY = verdict_text.Vocabulary(fake=verdict_text.FAKE_WORDS + "|generated", real=verdict_text.REAL_WORDS,
                                     markers=("FAKE", "REAL"))


def _finite(values) -> Box | None:
    try:
        out = tuple(map(float, values))
    except (TypeError, ValueError):
        return None
    return out if all(map(math.isfinite, out)) else None  # type: ignore[return-value]


def parse_time(expr: str) -> float | None:
    """Seconds of one time expression ("1.5", "1.5s", "1.5 seconds", "1500 ms", "0:01.5", "1 min"), else None."""
    try:
        s = expr.strip().lower()
        if ":" in s:
            parts = s.split(":")
            if len(parts) > 3:
                return None
            value = 0.0
            for p in parts:
                value = value * 60 + float(p)
            return value if math.isfinite(value) else None
        m = _NUMBER_UNIT.match(s)
        if not m:
            return None
        value = float(m.group(1))
        unit = (m.group(2) or "s").lower()
        if unit.startswith("m") and unit not in ("min", "mins", "minute", "minutes"):
            value /= 1000.0  # ms, msec, millisecond(s)
        elif unit in ("min", "mins", "minute", "minutes"):
            value *= 60.0
        return value if math.isfinite(value) and value >= 0 else None
    except (ValueError, OverflowError):
        return None


def _time_at(text: str, m: re.Match[str], group: int = 1) -> float | None:
    """The time captured by `group`, unless it is a bare number followed by "frames", "x 720", ", 3" ... or preceded by
    "frame"."""
    expr = m.group(group)
    if expr is None or (not _HAS_UNIT.search(expr) and (
            _NOT_TIME_AFTER.match(text, m.end(group))
            or _NOT_TIME_BEFORE.search(text, max(0, m.start(group) - 20), m.start(group)))):
        return None
    return parse_time(expr)


def _first_time(text: str) -> float | None:
    for m in _TIME_RE.finditer(text):
        value = _time_at(text, m)
        if value is not None:
            return value
    return None


def _strip_special_tail(text: str) -> str:
    """`text` without trailing decoder special tokens (`<|im_end|>`, `</s>`, ...)."""
    return _SPECIAL_TAIL.sub("", text) if text.rstrip().endswith(">") else text


def _clean_explanation(text: str) -> str | None:
    if "<" in text:
        text = _EXPL_TAGS.sub(" ", _strip_special_tail(text))
    return _clean(text) or None


def _box(text: str, strict: bool) -> Box | None:
    candidates: list[re.Match[str] | None] = []
    tag = _TAG_COORDS.search(text)
    if tag:
        inner = tag.group(1)
        candidates += [_QWEN_BOX.search(inner) if not strict else None, _BRACKET_BOX.search(inner),
                       _BARE_BOX.search(inner)]
        if not strict:
            candidates += [_PAIR_BOX.search(inner)]
    if not strict:
        candidates.append(_QWEN_BOX.search(text))
    candidates.append(_BRACKET_BOX.search(text))
    if not strict:
        candidates += [_PAIR_BOX.search(text), _PAREN_BOX.search(text)]
    for m in candidates:
        box = _finite([g for g in m.groups() if g is not None]) if m else None
        if box is not None and len(box) == 4:
            return box
    return None


def _start_end(text: str, strict: bool) -> tuple[float | None, float | None]:
    start = end = None
    tag = _TAG_START.search(text)
    if tag:
        start = _first_time(tag.group(1))
    if start is None:
        m = _STRICT_START.search(text)
        if m:
            start = _time_at(text, m)
    tag = _TAG_END.search(text)
    if tag:
        end = _first_time(tag.group(1))
    if strict:
        return start, end
    for pattern in _START_PHRASES:
        if start is not None and end is not None:
            break
        for m in pattern.finditer(text):
            s = _time_at(text, m)
            if s is None:
                continue
            if start is None:
                start = s
            if pattern.groups > 1 and end is None and start == s:
                end = _time_at(text, m, 2)
            break
    if end is None:
        for pattern in _END_PHRASES:
            for m in pattern.finditer(text):
                end = _time_at(text, m)
                if end is not None:
                    break
            if end is not None:
                break
    return start, end


def _frames(text: str, strict: bool) -> tuple[float | None, float | None]:
    """Onset and end given as frame numbers (in the time tags; anywhere unless `strict`)."""
    start = end = None
    for tag, which in ((_TAG_START, 0), (_TAG_END, 1)):
        found = tag.search(text)
        m = _FRAME_IN_TAG.search(found.group(1)) if found else None
        if m:
            value = float(next(g for g in m.groups() if g is not None))
            start, end = (value, end) if which == 0 else (start, value)
    if strict:
        return start, end
    if start is None:
        for pattern in _FRAME_START:
            m = pattern.search(text)
            if m:
                start = float(m.group(1))
                if end is None:
                    after = _FRAME_END.match(text, m.end()) or _FRAME_END.search(text, m.end(), m.end() + 40)
                    end = float(after.group(1)) if after else None
                break
    if end is None:
        m = _FRAME_END.search(text)
        if m and start is not None:
            end = float(m.group(1))
    return start, end


def _explanation(text: str, strict: bool) -> tuple[str | None, tuple[int, int] | None]:
    """The explanation and where it is in `text` (the span of its tag or marker; None when there is none)."""
    tag = _TAG_EXPL.search(text)
    if tag:
        return _clean_explanation(tag.group(1)), tag.span()
    for pattern in [_STRICT_EXPL] if strict else _EXPL_PHRASES:
        m = pattern.search(text)
        if m:
            found = _clean_explanation(m.group(1))
            if found:
                return found, m.span()
    return None, None


def parse(text: object, *, strict: bool = False) -> Answer:
    """What one generation says (see the module rules). `strict` (the scorer's --compat) reads only the paper's two
    formats. Never raises."""
    try:
        return _parse(text, strict)
    except Exception as exc:  # pragma: no cover - a parser bug must not abort a scoring run; it is reported instead
        return Answer(label=None, issues=(f"parser error: {type(exc).__name__}",))


def _parse(text: object, strict: bool) -> Answer:
    final = final_answer(text)
    notes = final.notes
    if UNFINISHED in notes:
        return Answer(label=None, issues=(UNFINISHED,), notes=tuple(n for n in notes if n != UNFINISHED))
    text = _strip_special_tail(final.text)
    if not text.strip():
        return Answer(label=None, issues=(EMPTY,), notes=notes)
    if text.strip() == REAL_ANSWER:  # the exact SFT answers (the common case): read by their grammar
        return Answer(label=REAL, notes=notes)
    m = _SFT_FAKE.match(text)
    if m:
        *numbers, start, explanation = m.groups()
        expl = _clean_explanation(explanation or "")
        start_s = float(start) if start is not None else None
        issues = (() if start_s is not None else (NO_START,)) + (() if expl else (NO_EXPLANATION,))
        return Answer(label=FAKE, box=_finite(numbers), start=start_s, explanation=expl, issues=issues, notes=notes)
    # Box, times and verdict are read outside the explanation (which may mention "1.5 seconds", "[a, b]" or "REAL").
    explanation, span = _explanation(text, strict)
    rest = text if span is None else text[: span[0]] + " " + text[span[1]:]
    reading = VOCABULARY.read(rest, markers_only=strict)
    if reading.label != FAKE:
        return Answer(label=reading.label, issues=(reading.issue,) if reading.issue else (), notes=notes)
    issues: list[str] = []
    box = _box(rest, strict)
    start, end = _start_end(rest, strict)
    start_frame = end_frame = None
    if start is None:
        start_frame, end_frame = _frames(rest, strict)
        if start_frame is not None:
            notes = (*notes, FRAMES)
    if box is None:
        issues.append(NO_BOX)
    if start is None and start_frame is None:
        issues.append(NO_START)
    if explanation is None:
        issues.append(NO_EXPLANATION)
    return Answer(label=FAKE, box=box, start=start, end=end, explanation=explanation, start_frame=start_frame,
                  end_frame=end_frame, issues=tuple(issues), notes=notes)


# --- the judge (paper App. D) --------------------------------------------------------------------------------------

JUDGE_PROMPT_FILE = "deeptrace/judge.txt"
JUDGE_PROMPT = load(JUDGE_PROMPT_FILE)  # the paper's App. D text, verbatim
JUDGE_SCORES = (0.0, 0.5, 1.0)


def judge_messages(reference: str, prediction: str) -> list[dict[str, str]]:
    """App. D prompt + one more pair in the style of its examples (our reconstruction: the paper shows no slots).

    The whole prompt is one user message: the paper's text, a blank line, then
    `Ground Truth: '<reference>'` / `Predicted   : '<prediction>'` / `Answer      :` (whitespace-normalised texts).
    """
    reference, prediction = _clean(reference), _clean(prediction)
    text = f"{JUDGE_PROMPT}\nGround Truth: '{reference}'\nPredicted   : '{prediction}'\nAnswer      :"
    return [{"role": "user", "content": text}]


_SCORE_NUMBER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)(?!\.?\d)")


def parse_judge_score(reply: str) -> float | None:
    """0, 0.5 or 1 when the reply states exactly one number and it is one of those; otherwise None."""
    values = {float(n) for n in _SCORE_NUMBER.findall(final_answer(reply).text)}
    if len(values) == 1:
        value = values.pop()
        if value in JUDGE_SCORES:
            return value
    return None
