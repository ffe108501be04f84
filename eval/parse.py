"""DeeptraceReward generation parser: label, box, start (and end) time, explanation. Never raises.

Two answer formats are read:
- the SFT answer (paper sec. 3.2, `prompts/deeptrace.py`): `FAKE. The video is AI-generated. The unnatural part is at
  [x0, y0, x1, y1] starting T seconds. The reason is because E` / `REAL. The video is real. ...`;
- the zero-shot tag format (paper App. E): a REAL/FAKE reply with `<coordinates>`, `<start_time>`, `<explanation>`.

`strict=True` (the scorer's `--compat`) reads only those two formats. The default also reads what models commonly emit
instead: Qwen box tokens `<|box_start|>(x1,y1),(x2,y2)<|box_end|>`, `(x0, y0, x1, y1)`, time ranges ("from 1.2 to 3.4
seconds"), mm:ss times, `Explanation:` / `Reason:` markers, and a lower-case real/fake verdict. The full rule list is in
eval/README.md. Numbers are returned as written; `box_to_ratio` applies the box convention (meta.bbox_format).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

FAKE, REAL = "fake", "real"

# --- box conventions --------------------------------------------------------------------------------------------

BOX_FORMATS = {
    "pixels": "pixels", "pixel": "pixels", "px": "pixels", "abs": "pixels", "absolute": "pixels", "real": "pixels",
    "norm1000": "norm1000", "0-1000": "norm1000", "1000": "norm1000", "qwen": "norm1000",
    "norm1": "norm1", "0-1": "norm1", "ratio": "norm1", "relative": "norm1", "norm": "norm1",
}


def canonical_box_format(name: object) -> str | None:
    """'pixels' | 'norm1000' | 'norm1' for a known spelling, else None."""
    return BOX_FORMATS.get(str(name).strip().lower()) if name is not None else None


def box_to_ratio(box, fmt: str, width: float | None = None, height: float | None = None):
    """`[x0, y0, x1, y1]` in convention `fmt` → fractions of the frame (x/W, y/H). Pixels need width and height."""
    fmt = canonical_box_format(fmt) or fmt
    x0, y0, x1, y1 = (float(v) for v in box)
    if fmt == "pixels":
        if not width or not height:
            raise ValueError("pixel boxes need the frame width and height")
        return (x0 / width, y0 / height, x1 / width, y1 / height)
    if fmt == "norm1000":
        return (x0 / 1000.0, y0 / 1000.0, x1 / 1000.0, y1 / 1000.0)
    if fmt == "norm1":
        return (x0, y0, x1, y1)
    raise ValueError(f"unknown box format {fmt!r}")


# --- result -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    label: str | None  # "fake" | "real" | None (unparseable)
    box: tuple[float, float, float, float] | None = None  # as written, in the model's box convention
    start: float | None = None  # seconds
    end: float | None = None  # seconds, only when the generation states one
    explanation: str | None = None  # whitespace-normalised
    issues: tuple[str, ...] = field(default=())  # what could not be parsed (see ISSUES)


ISSUES = (
    "empty",  # blank generation
    "no label",  # neither REAL nor FAKE found
    "ambiguous label",  # both found, no leading verdict
    "fake without box",
    "fake without start time",
    "fake without explanation",
)

# --- patterns ---------------------------------------------------------------------------------------------------

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

_STRICT_EXPL = re.compile(r"\bThe reason is because\b\s*(.*)", re.S)
_EXPL_PHRASES = [
    _STRICT_EXPL,
    re.compile(r"\b(?:the\s+)?reason\s+is(?:\s+because|\s+that)?\s*:?\s*(.*)", re.S | re.I),
    re.compile(r"\b(?:explanation|reason(?:ing)?|rationale)\s*:\s*(.*)", re.S | re.I),
]

_SFT_FAKE = re.compile(rf"\s*FAKE\. The video is AI-generated\. The unnatural part is at \[\s*{_BOX4}\s*\]"
                       r"(?: starting (\d{1,12}(?:\.\d{1,12})?) seconds)?\.(?: The reason is because (.*))?\Z", re.S)
_SPECIAL_TAIL = re.compile(r"(?:\s*(?:<\|[A-Za-z0-9_]{1,40}\|>|</s>|<eos>|<end_of_turn>))+\s*\Z")
_LEAD_STRIP = re.compile(r"^[\s*#>_`'\"\[\(]*(?:(?:answer|label|prediction|verdict|final answer|result)\s*[:：-]\s*"
                         r"[\s*_`'\"\[\(]*)?", re.I)
_LEAD_LABEL_STRICT = re.compile(r"(FAKE|REAL)\b")
_LEAD_LABEL = re.compile(r"(FAKE|REAL)\b", re.I)
_LEAD_ALTERNATIVE = re.compile(r"\s*(?:or|/|vs\.?|versus|and)\s*['\"*]*(?:FAKE|REAL)\b", re.I)
_UPPER_LABEL = re.compile(r"\b(FAKE|REAL)\b")
_LOWER_FAKE = re.compile(r"\b(?:fake|ai[- ]generated|synthetic|synthesi[sz]ed|generated)\b", re.I)
_LOWER_REAL = re.compile(r"\b(?:real|authentic|genuine)\b", re.I)
_NEGATION = re.compile(r"(?:\bnot|n't|\bno|\bnever)\s+(?:\w+\s+)?\Z", re.I)


def _finite(values) -> tuple[float, ...] | None:
    try:
        out = tuple(map(float, values))
    except (TypeError, ValueError):
        return None
    return out if all(map(math.isfinite, out)) else None


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
    """The time captured by `group`, unless it is a bare number followed by "frames", "x 720", ", 3" ..."""
    expr = m.group(group)
    if expr is None or (not _HAS_UNIT.search(expr) and _NOT_TIME_AFTER.match(text, m.end(group))):
        return None
    return parse_time(expr)


def _first_time(text: str) -> float | None:
    for m in _TIME_RE.finditer(text):
        value = _time_at(text, m)
        if value is not None:
            return value
    return None


def _clean_text(text: str) -> str:
    return " ".join(text.split())


def _clean_explanation(text: str) -> str | None:
    text = _SPECIAL_TAIL.sub("", text)
    text = _EXPL_TAGS.sub(" ", text)
    text = _clean_text(text)
    return text or None


def _label(text: str, strict: bool, issues: list[str]) -> str | None:
    lead = _LEAD_STRIP.sub("", text, count=1)
    m = (_LEAD_LABEL_STRICT if strict else _LEAD_LABEL).match(lead)
    if m and not _LEAD_ALTERNATIVE.match(lead, m.end()):  # "REAL or FAKE?" is no verdict
        return m.group(1).lower()
    # Verdict elsewhere: ignore what is inside <explanation> (it may say "looks real").
    body = _TAG_EXPL.sub(" ", text)
    found = {m.group(1).lower() for m in _UPPER_LABEL.finditer(body)}
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        issues.append("ambiguous label")
        return None
    if strict:
        issues.append("no label")
        return None
    votes = set()
    for pattern, label, other in ((_LOWER_FAKE, FAKE, REAL), (_LOWER_REAL, REAL, FAKE)):
        for m in pattern.finditer(body):
            votes.add(other if _NEGATION.search(body[max(0, m.start() - 40) : m.start()]) else label)
    if len(votes) == 1:
        return votes.pop()
    issues.append("ambiguous label" if votes else "no label")
    return None


def _box(text: str, strict: bool, issues: list[str]) -> tuple[float, float, float, float] | None:
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
            return box  # type: ignore[return-value]
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


def _explanation(text: str, strict: bool) -> str | None:
    tag = _TAG_EXPL.search(text)
    if tag:
        found = _clean_explanation(tag.group(1))
        if found:
            return found
    for pattern in [_STRICT_EXPL] if strict else _EXPL_PHRASES:
        m = pattern.search(text)
        if m:
            found = _clean_explanation(m.group(1))
            if found:
                return found
    return None


def parse_generation(text: object, *, strict: bool = False) -> Parsed:
    """Parse one generation. Localisation and explanation are only read from a FAKE verdict. Never raises."""
    try:
        return _parse(text, strict)
    except Exception as exc:  # pragma: no cover - a parser bug must not abort a scoring run; it is reported instead
        return Parsed(label=None, issues=(f"parser error: {type(exc).__name__}",))


def _parse(text: object, strict: bool) -> Parsed:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = _SPECIAL_TAIL.sub("", text)
    if not text.strip():
        return Parsed(label=None, issues=("empty",))
    m = _SFT_FAKE.match(text)
    if m:  # the exact SFT answer (the common case): read by its grammar
        *numbers, start, explanation = m.groups()
        box, expl = _finite(numbers), _clean_explanation(explanation or "")
        start_s = float(start) if start is not None else None
        issues = (() if start_s is not None else ("fake without start time",)) + (
            () if expl else ("fake without explanation",))
        return Parsed(label=FAKE, box=box, start=start_s, explanation=expl, issues=issues)  # type: ignore[arg-type]
    issues: list[str] = []
    label = _label(text, strict, issues)
    if label != FAKE:
        return Parsed(label=label, issues=tuple(issues))
    box = _box(text, strict, issues)
    start, end = _start_end(text, strict)
    explanation = _explanation(text, strict)
    if box is None:
        issues.append("fake without box")
    if start is None:
        issues.append("fake without start time")
    if explanation is None:
        issues.append("fake without explanation")
    return Parsed(label=FAKE, box=box, start=start, end=end, explanation=explanation, issues=tuple(issues))
