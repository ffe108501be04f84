"""DeepfakeJudge prompts and output formats: the judges' templates, filled byte-exact, and the parsers of the three
answer formats (judge score, judge choice, detector label) — their one owner, used by the converter, `eval/dfj.py`
and the report. Reasoning (`<think>…</think>`) is set aside first (prompts/reasoning.py); a generation cut off
while thinking is unparseable ("unfinished reasoning").

Templates: `prompts/deepfakejudge/{pointwise,pairwise}_prompt.txt`, byte-exact copies of the upstream repository's
`pointwise/prompt.txt` / `pairwise/prompt.txt` (CRLF line endings kept). Upstream's inference scripts read them with
`open(path).read()`, in text mode, which turns every CRLF into LF: `newline="lf"` fills that text instead of the
stored bytes (`newline="crlf"`, the default here). Placeholders are `{ground_truth_label}`,
`{candidate_response}`, `{response_a}`, `{response_b}`; the templates also contain literal braces
(`{integer score from 1 to 5}`, `{A_or_B}`), which is why upstream's own `str.format` call raises KeyError. Filling is
single-pass: a value is inserted verbatim even if it quotes a placeholder (a response containing "{response_b}").

Formats: candidate `<reasoning>…</reasoning> <answer>real|fake</answer>`; pointwise judge
`<reasoning>…</reasoning>\\n<score>1..5</score>`; pairwise judge `<answer>A|B</answer>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prompts import PROMPTS_DIR, load
from prompts.reasoning import UNFINISHED, final_answer, without_thinking

POINTWISE_FILE = "deepfakejudge/pointwise_prompt.txt"
PAIRWISE_FILE = "deepfakejudge/pairwise_prompt.txt"
POINTWISE = load(POINTWISE_FILE)
PAIRWISE = load(PAIRWISE_FILE)
NEWLINES = ("crlf", "lf")  # the stored bytes; the text upstream's inference reads (universal newlines)
_TEXT_MODE = {name: (PROMPTS_DIR / name).read_text(encoding="utf-8") for name in (POINTWISE_FILE, PAIRWISE_FILE)}
POINTWISE_KEYS = ("ground_truth_label", "candidate_response")
PAIRWISE_KEYS = ("ground_truth_label", "response_a", "response_b")

IMAGE_TAG = "<image>"
LABELS = ("real", "fake", "edited")  # ground-truth classes; "edited" counts as fake for detection
CHOICES = ("A", "B")
SCORES = (1, 2, 3, 4, 5)


def _fill(template: str, keys: tuple[str, ...], values: dict[str, str]) -> str:
    """Substitute exactly `keys` in one pass (inserted text is never rescanned); other braces stay literal."""
    if set(values) != set(keys):
        raise KeyError(f"expected values for {', '.join(keys)}; got {', '.join(sorted(values))}")
    for key, value in values.items():
        if "{" + key + "}" not in template:
            raise KeyError(f"placeholder {{{key}}} not in template")
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    pattern = re.compile("|".join(re.escape("{" + k + "}") for k in keys))
    return pattern.sub(lambda m: values[m.group(0)[1:-1]], template)


def check_label(label: str) -> str:
    if label not in LABELS:
        raise ValueError(f"ground-truth label must be one of {', '.join(LABELS)}; got {label!r}")
    return label


def _template(name: str, newline: str) -> str:
    if newline not in NEWLINES:
        raise ValueError(f"newline must be one of {', '.join(NEWLINES)}; got {newline!r}")
    return _TEXT_MODE[name] if newline == "lf" else load(name)


def pointwise_prompt(ground_truth_label: str, candidate_response: str, *, newline: str = "crlf") -> str:
    """The pointwise judge prompt (the stored CRLF template, or with newline="lf" the text upstream's inference
    reads), without the image tag. The response is inserted verbatim either way."""
    return _fill(_template(POINTWISE_FILE, newline), POINTWISE_KEYS,
                 {"ground_truth_label": check_label(ground_truth_label), "candidate_response": candidate_response})


def pairwise_prompt(ground_truth_label: str, response_a: str, response_b: str, *, newline: str = "crlf") -> str:
    """The pairwise judge prompt (the stored CRLF template, or with newline="lf" the text upstream's inference
    reads), without the image tag. The responses are inserted verbatim either way."""
    return _fill(_template(PAIRWISE_FILE, newline), PAIRWISE_KEYS, {"ground_truth_label": check_label(
        ground_truth_label), "response_a": response_a, "response_b": response_b})


def _template_regex(template: str, keys: tuple[str, ...]) -> re.Pattern[str]:
    """A regex matching a filled `template` (leading image tags allowed, CRLF or LF), one named group per key."""
    pattern = re.compile("|".join(re.escape("{" + k + "}") for k in keys))
    parts, pos = [], 0
    for m in pattern.finditer(template):
        parts.append(_literal(template[pos:m.start()]))
        name = m.group(0)[1:-1]
        parts.append(f"(?P={name})" if f"(?P<{name}>" in "".join(parts) else f"(?P<{name}>.*?)")
        pos = m.end()
    parts.append(_literal(template[pos:]))
    return re.compile(r"\s*(?:<image>\s*)*" + "".join(parts) + r"\s*", re.DOTALL)


def _literal(text: str) -> str:
    return r"\r?\n".join(re.escape(line) for line in text.replace("\r\n", "\n").split("\n"))


_PAIRWISE_RE = _template_regex(PAIRWISE, PAIRWISE_KEYS)


def match_pairwise(text: str) -> dict[str, str] | None:
    """{ground_truth_label, response_a, response_b} of a filled pairwise prompt, or None if `text` is not one."""
    m = _PAIRWISE_RE.fullmatch(text)
    return m.groupdict() if m else None


def swap_pairwise(text: str) -> str | None:
    """The same pairwise prompt with responses A and B exchanged, every other byte kept; None if `text` is not a
    filled pairwise prompt."""
    m = _PAIRWISE_RE.fullmatch(text)
    if not m:
        return None
    (a0, a1), (b0, b1) = m.span("response_a"), m.span("response_b")
    return text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]


def swap_choice(text: str) -> str:
    """`<answer>A</answer>` ↔ `<answer>B</answer>` in a pairwise target (everything else kept)."""
    return _ANSWER_LETTER.sub(lambda m: m.group(1) + ("B" if m.group(2) in "Aa" else "A") + m.group(3), text)


_GT_LABEL = re.compile(r"Ground Truth Label:[ \t]*(real|fake|edited)\b", re.IGNORECASE)


def ground_truth_label_in(prompt: str) -> str | None:
    """The `Ground Truth Label: X` a judge prompt states (both templates have the line), or None."""
    found = {m.lower() for m in _GT_LABEL.findall(prompt or "")}
    return found.pop() if len(found) == 1 else None


# --- output formats ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    value: object = None  # int score, "A"/"B", or a label; None when unparseable
    issue: str | None = None  # why it is unparseable


_SCORE = re.compile(r"<score>\s*([^<]*?)\s*</score>", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>\s*([^<]*?)\s*</answer>", re.IGNORECASE)
_ANSWER_LETTER = re.compile(r"(<answer>\s*)([AaBb])(\s*</answer>)", re.IGNORECASE)
_INTEGER = re.compile(r"[+]?(\d+)(?:\.0*)?")


def _answer_text(text: object) -> tuple[str | None, Parsed | None]:
    """The generation without its reasoning, or the Parsed saying why there is none."""
    if not isinstance(text, str):
        return None, Parsed(issue="no text")
    rest = without_thinking(text)
    if UNFINISHED in rest.notes:
        return None, Parsed(issue=UNFINISHED)
    return rest.text, None


def _tagged(regex: re.Pattern[str], text: object, what: str, read) -> Parsed:
    text, problem = _answer_text(text)
    if problem is not None:
        return problem
    found = regex.findall(text)
    if not found:
        return Parsed(issue=f"no {what} tag")
    values = set()
    for raw in found:
        value = read(raw)
        if value is None:
            return Parsed(issue=f"invalid {what}")
        values.add(value)
    if len(values) > 1:
        return Parsed(issue=f"conflicting {what} tags")
    return Parsed(values.pop())


def _score_value(raw: str) -> int | None:
    m = _INTEGER.fullmatch(raw)
    value = int(m.group(1)) if m else None
    return value if value in SCORES else None


def parse_score(text: object) -> Parsed:
    """Pointwise judge output → score 1..5 from `<score>N</score>` (whitespace and `4.0` accepted; several tags
    must agree). Anything else is unparseable, with the reason in `issue`."""
    return _tagged(_SCORE, text, "score", _score_value)


def parse_choice(text: object) -> Parsed:
    """Pairwise judge output → "A" / "B" from `<answer>A</answer>` (case-insensitive), or a reply that is just the
    letter."""
    rest, _ = _answer_text(text)
    if rest is not None and rest.strip().upper() in CHOICES:
        return Parsed(rest.strip().upper())
    return _tagged(_ANSWER, text, "answer", lambda raw: raw.upper() if raw.upper() in CHOICES else None)


def parse_label(text: object) -> Parsed:
    """Detector output → "real" / "fake" / "edited" from `<answer>…</answer>` (case-insensitive). Several tags must
    agree on real vs. fake (fake and edited agree: both are fake for detection)."""
    found = _tagged(_ANSWER, text, "answer", lambda raw: raw.lower() if raw.lower() in LABELS else None)
    if found.issue == "conflicting answer tags":
        labels = {v.lower() for v in _ANSWER.findall(_answer_text(text)[0])}
        if "real" not in labels:
            return Parsed("fake")
    return found


_REASONING = re.compile(r"<\s*reasoning\s*>(.*?)<\s*/\s*reasoning\s*>", re.IGNORECASE | re.DOTALL)
_ANSWER_PART = re.compile(r"<\s*answer\s*>.*?(?:<\s*/\s*answer\s*>|\Z)", re.IGNORECASE | re.DOTALL)


def reasoning_text(text: object) -> str:
    """The explanation of a candidate `<reasoning>…</reasoning> <answer>…</answer>`: the last reasoning tag's content;
    without one, the text less its `<answer>` tags and `<think>` blocks. '' for non-strings and unfinished thinking."""
    if not isinstance(text, str):
        return ""
    found = _REASONING.findall(text)
    if found:
        return found[-1].strip()
    return final_answer(_ANSWER_PART.sub(" ", text)).text


def is_fake(label: str) -> bool:
    """Detection class: fake and edited images are fake."""
    return label in ("fake", "edited")
