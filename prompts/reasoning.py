"""What reasoning models put around an answer, read the same way by every answer codec in `prompts/`.

Reasoning models (and detectors trained with RL) write `<think>…</think>` before their answer, and DeepfakeJudge-style
outputs wrap the verdict in `<answer>…</answer>`. A verdict word inside the thinking ("maybe it is real… no, FAKE")
must never be read as the answer, so each codec first calls `final_answer` and parses only what it returns.

Rules:
- `<think>…</think>` blocks are set aside; so is everything before a lone `</think>` (chat templates that open the
  think block in the prompt, so the generation starts inside it).
- A `<think>` that is never closed means the generation stopped while thinking: there is no answer (issue
  "unfinished reasoning"), even if verdict words occur in it.
- `<answer>…</answer>`: the answer is the content of the last complete answer tag (issue "answer tag" records that it
  was read). An unclosed `<answer>` (a cut-off generation) runs to the end of the text.
- Otherwise the answer is the whole remaining text.
Tags are matched case-insensitively, with optional spaces inside the angle brackets.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_THINK_BLOCK = re.compile(r"<\s*think\s*>.*?<\s*/\s*think\s*>", re.S | re.I)
_THINK_OPEN = re.compile(r"<\s*think\s*>", re.I)
THINK_CLOSE = r"<\s*/\s*think\s*>"  # the end of a thinking block (also read from token bytes: eval/reward.py)
_THINK_CLOSE = re.compile(THINK_CLOSE, re.I)
_ANSWER = re.compile(r"<\s*answer\s*>(.*?)<\s*/\s*answer\s*>", re.S | re.I)
_ANSWER_OPEN = re.compile(r"<\s*answer\s*>(.*)\Z", re.S | re.I)

UNFINISHED = "unfinished reasoning"  # a <think> block that never closes: no answer was given
ANSWER_TAG = "answer tag"  # the answer was read from <answer>…</answer>
THOUGHT = "reasoning set aside"  # a <think> block (or text before a lone </think>) was removed
ISSUES = (UNFINISHED,)  # the ones that make a generation unparseable; the others are notes


class Final(NamedTuple):
    text: str  # the part of the generation that holds the answer ("" when there is none)
    notes: tuple[str, ...]  # what was set aside or read: THOUGHT, ANSWER_TAG, UNFINISHED


def without_thinking(text: object) -> Final:
    """The generation with its reasoning set aside (the first two rules), for formats that read several tags of their
    own (DeepfakeJudge's `<score>` / `<answer>`); `text` is "" when it stopped while thinking. Never raises."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if "<" not in text:  # no tag at all (the common case): nothing to set aside
        return Final(text, ())
    notes: list[str] = []
    stripped = _THINK_BLOCK.sub(" ", text)
    if stripped != text:
        notes.append(THOUGHT)
    closes = list(_THINK_CLOSE.finditer(stripped))
    if closes:  # a lone </think>: the generation began inside the thinking
        stripped = stripped[closes[-1].end():]
        if THOUGHT not in notes:
            notes.append(THOUGHT)
    if _THINK_OPEN.search(stripped):
        return Final("", (*notes, UNFINISHED))
    return Final(stripped, tuple(notes))


def final_answer(text: object) -> Final:
    """The answer part of a generation (see the module rules). Never raises."""
    rest = without_thinking(text)
    if UNFINISHED in rest.notes:
        return rest
    if "<" not in rest.text:
        return Final(rest.text.strip(), rest.notes)
    answers = _ANSWER.findall(rest.text)
    if answers:
        return Final(answers[-1].strip(), (*rest.notes, ANSWER_TAG))
    tail = _ANSWER_OPEN.search(rest.text)
    if tail:
        return Final(tail.group(1).strip(), (*rest.notes, ANSWER_TAG))
    return Final(rest.text.strip(), rest.notes)
