"""FakeClue's answer format (FakeVLM): one codec for the converter, the scorer, the report and the RL rewards.

A FakeClue answer is the verdict sentence `This is a fake image.` / `This is a real image.` followed by the evidence
("The nostrils are pixelated and irregular; …"). `render(label, explanation)` writes it; `parse(text)` reads the
verdict back from any generation — a fine-tuned model's (the same sentence, decided at once) or a zero-shot model's
free text — and never guesses: an answer that refuses, hedges, says both, negates its verdict word from too far to
tell, or says nothing is unparseable, with the reason in `Verdict.issue`.

How `parse` reads a generation:
- `prompts.reasoning.final_answer` first: `<think>…</think>` is set aside, `<answer>…</answer>` is what is read, an
  unclosed `<think>` is "unfinished reasoning". Decoder special tokens (`<|im_end|>`, `</s>`, …) are dropped.
- FakeClue's own first sentence, `This is a fake/real image.`, decides at once (a fine-tuned model's answer).
- Any other text is read by the free-text rules every codec shares (`prompts/verdict_text.py`: the first sentence
  that states a verdict decides; negation scope, litotes, alternatives; refusals, hedges and negations that may or
  may not reach the word are unparseable) with the shared words (`VOCABULARY`): fake = fake, AI-generated,
  computer-generated, synthetic, synthesized, manipulated, forged, fabricated, deepfake, tampered, doctored, generated
  / created / made by AI; real = real (not "real-world", "real-time"), authentic, genuine. The explanation is the
  answer without its deciding sentence.

`parse_fakevlm(text, rng)` is the official FakeVLM evaluation's rule instead (substrings, `'real'` tested before
`'fake'`, a random guess where neither word occurs), with the guess drawn from a seeded generator: an explicit
compatibility mode (`eval/score.py --compat fakevlm`), never the default.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from prompts import verdict_text
from prompts.reasoning import UNFINISHED, final_answer

FAKE, REAL = "fake", "real"
LABELS = (FAKE, REAL)
QUESTION = "<image>Does the image looks real/fake?"  # sic: FakeClue's released data says "looks"
IMAGE_TAG = "<image>"

# Every reason a verdict is unparseable: the shared free-text reader's names (prompts/verdict_text.py).
EMPTY, NO_VERDICT, AMBIGUOUS = verdict_text.EMPTY, verdict_text.NO_VERDICT, verdict_text.AMBIGUOUS
REFUSAL, HEDGE, NEGATED = verdict_text.REFUSAL, verdict_text.HEDGE, verdict_text.NEGATED
ISSUES = verdict_text.ISSUES


@dataclass(frozen=True)
class Verdict:
    label: str | None  # FAKE | REAL | None (unparseable)
    explanation: str = ""  # the answer without its verdict sentence ("" when unparseable)
    issue: str | None = None  # one of ISSUES when label is None
    guessed: bool = False  # parse_fakevlm: the official random guess decided it
    notes: tuple[str, ...] = ()  # what prompts.reasoning set aside or read (reasoning set aside, answer tag)


# --- render ------------------------------------------------------------------------------------------------------

# Text that `parse` would not read back as written: reasoning tags (final_answer acts on them) and special tokens.
_UNRENDERABLE = re.compile(r"<\s*/?\s*(?:think|answer)\s*>|<\|[a-z_]+\|>|</?s>|<pad>|<unk>|<image>", re.IGNORECASE)


def render(label: str, explanation: str = "") -> str:
    """FakeClue's answer: the verdict sentence, then the explanation (stripped). `parse` reads it back exactly."""
    if label not in LABELS:
        raise ValueError(f"label must be {FAKE!r} or {REAL!r}, got {label!r}")
    if not isinstance(explanation, str):
        raise TypeError(f"explanation must be a string, got {type(explanation).__name__}")
    if _UNRENDERABLE.search(explanation):
        raise ValueError("the explanation contains a reasoning tag or a decoder special token, which a parser must "
                         "not read as part of the answer")
    explanation = explanation.strip()
    head = f"This is a {label} image."
    return f"{head} {explanation}" if explanation else head


# --- parse -------------------------------------------------------------------------------------------------------

_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>|</?s>|<pad>|<unk>|<image>", re.IGNORECASE)
# FakeClue's own first sentence (every reference answer, and a fine-tuned model's output): decided at once.
_CANONICAL = re.compile(r"This is an? (fake|real) image\.(?=\s|$)")

VOCABULARY = verdict_text.Vocabulary(fake=verdict_text.FAKE_WORDS, real=verdict_text.REAL_WORDS)


def clean(text: object) -> str:
    """A text with decoder special tokens removed and whitespace trimmed ('' for None / non-strings)."""
    return _SPECIAL_TOKENS.sub(" ", text).strip() if isinstance(text, str) else ""


def answer_text(text: object) -> str:
    """What a generation answers (`final_answer`'s text, special tokens removed): compared with the reference."""
    return clean(final_answer(text).text)


def parse(text: object) -> Verdict:
    """The verdict of a generation (FAKE / REAL), or None with the reason in `issue` (see the module rules).
    Never raises."""
    final = final_answer(text)
    notes = final.notes
    if UNFINISHED in notes:
        return Verdict(None, issue=UNFINISHED, notes=notes)
    body = clean(final.text)
    if not body:
        return Verdict(None, issue=EMPTY, notes=notes)
    canonical = _CANONICAL.match(body)
    if canonical:
        return Verdict(canonical.group(1), body[canonical.end():].strip(), notes=notes)
    reading = VOCABULARY.read(body)
    if reading.label is None:
        return Verdict(None, issue=reading.issue, notes=notes)
    start, end = reading.span
    rest = " ".join(part for part in (body[:start].strip(), body[end:].strip()) if part)
    return Verdict(reading.label, rest, notes=notes)


def parse_fakevlm(text: object, rng: random.Random) -> Verdict:
    """The official FakeVLM rule (its eval script), with the random guess drawn from `rng` instead of unseeded.

    The text after the last '?' (the official script decodes the prompt too and cuts it off there), split at '.';
    the first, then the second piece decides by substring, 'real' tested before 'fake' (so "unrealistic" is real and
    "This is a fake image, not a real one" is real); otherwise a coin flip, `rng.choice([0, 1])` (1 = real). The raw
    generation is read, as the official script reads it (no `<think>` handling).
    """
    response = (text if isinstance(text, str) else "").split("?")[-1]
    for piece in response.split(".")[:2]:
        piece = piece.lower()
        if "real" in piece:
            return Verdict(REAL)
        if "fake" in piece:
            return Verdict(FAKE)
    return Verdict(REAL if rng.choice([0, 1]) == 1 else FAKE, guessed=True)
