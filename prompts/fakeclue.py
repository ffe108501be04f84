"""FakeClue's answer format (FakeVLM): one codec for the converter, the scorer, the report and the RL rewards.

A FakeClue answer is the verdict sentence `This is a fake image.` / `This is a real image.` followed by the evidence
("The nostrils are pixelated and irregular; …"). `render(label, explanation)` writes it; `parse(text)` reads the
verdict back from any generation — a fine-tuned model's (the same sentence, decided at once) or a zero-shot model's
free text — and never guesses: an answer that refuses, hedges, says both or says nothing is unparseable, with the
reason in `Verdict.issue`.

How `parse` reads free text (the rules, each tested):
- `prompts.reasoning.final_answer` first: `<think>…</think>` is set aside, `<answer>…</answer>` is what is read, an
  unclosed `<think>` is "unfinished reasoning". Decoder special tokens (`<|im_end|>`, `</s>`, …) are dropped.
- The answer is split into sentences (at `.!?;` followed by a space, and at line breaks); questions (an echoed
  prompt) are skipped. The **first sentence that states a verdict** decides; the words read are whole words
  (`fake`, `AI-generated`, `synthetic`, `manipulated`, `deepfake`, … / `real`, `authentic`, `genuine`), so
  "unrealistic", "surreal" and "real-world" are not "real". "real or fake", "real/fake" (the question's wording),
  and a word after "whether" / "if" in its clause (an indirect question) state nothing.
- **Negation scope.** A sentence is cut into clauses at `, ; : ( ) —` and at conjunctions (but, and, so, because,
  although, …). A negator (not, n't, no, never, nothing, without, lacks, unlikely, rather than, …) flips a verdict
  word in its clause when every word between them is a *bridge* word: copulas and appearance verbs (is, be, appear,
  seem, look, like), determiners and pronouns, belief verbs (think, believe), evidence words (evidence, sign, trace,
  that, of, suggest, indicate), degree adverbs (really, entirely, clearly). So "does not appear to be fake", "there
  is no evidence that the image is fake" and "I don't think this is AI-generated" are real, while in "no artifacts
  are present in this real photograph" the "no" does not reach "real". Two negators cancel. Litotes are not
  negations ("no doubt", "without a doubt", "not only", "not hard to see").
- **Hedges** are unparseable: a possibility modal before the verdict word in its clause (might, may, could, maybe,
  perhaps, possibly, potentially; "could not" is a negation), or an uncertainty phrase (not sure, unsure, "it is
  unclear", inconclusive, hard/difficult/impossible to tell, may or may not, …) in the deciding sentence or before.
- **Refusals** are unparseable: an apology or "as an AI", or "can't / cannot / unable to" + determine, tell, say,
  know, verify, help, assist, … in the deciding sentence or before ("Sorry, I can't determine if this image is
  AI-generated." states no verdict).
- A deciding sentence that says both (after negations: "The face is real but the background is fake") is
  "ambiguous verdict"; no verdict anywhere is "no verdict"; nothing left to read is "empty".

`parse_fakevlm(text, rng)` is the official FakeVLM evaluation's rule instead (substrings, `'real'` tested before
`'fake'`, a random guess where neither word occurs), with the guess drawn from a seeded generator: an explicit
compatibility mode (`eval/score.py --compat fakevlm`), never the default.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from prompts.reasoning import UNFINISHED, final_answer

FAKE, REAL = "fake", "real"
LABELS = (FAKE, REAL)
QUESTION = "<image>Does the image looks real/fake?"  # sic: FakeClue's released data says "looks"
IMAGE_TAG = "<image>"

EMPTY, NO_VERDICT, AMBIGUOUS, HEDGE, REFUSAL = "empty", "no verdict", "ambiguous verdict", "hedge", "refusal"
ISSUES = (EMPTY, NO_VERDICT, AMBIGUOUS, HEDGE, REFUSAL, UNFINISHED)  # every reason a verdict is unparseable


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

_FAKE_WORDS = (r"fake|ai[- ]generated|computer[- ]generated|synthetic|synthesi[sz]ed|manipulated|forged|fabricated|"
               r"deepfake|tampered|doctored|(?:generated|created|produced|made) (?:by|with|using) (?:an? )?"
               r"(?:ai|artificial intelligence)")
_REAL_WORDS = r"real(?![- ](?:world|time)\b)|authentic|genuine"
_VERDICT_WORD = re.compile(rf"\b(?:(?P<fake>{_FAKE_WORDS})|(?P<real>{_REAL_WORDS}))\b", re.IGNORECASE)
# "real or fake", "fake/real", "authentic vs. manipulated": the question's wording, not a verdict.
_ALTERNATIVE = re.compile(rf"\b(?:{_FAKE_WORDS}|{_REAL_WORDS})\s*(?:/|\bor\b|\bvs\b\.?|\bversus\b|\bnor\b)\s*"
                          rf"(?:{_FAKE_WORDS}|{_REAL_WORDS})\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]—–]|\s-\s|\b(?:but|however|although|though|while|whereas|yet|so|therefore|"
                           r"thus|hence|because|since|and|instead|then|which|who|when)\b", re.IGNORECASE)
# An indirect question ("whether it is real", "if the image is fake") states no verdict in its clause.
_INDIRECT = re.compile(r"\b(?:whether|if)\b", re.IGNORECASE)

_NEGATOR = re.compile(r"\b(?:not|no|never|nothing|none|neither|nor|without|cannot|lacks?|lacking|absence|absent|"
                      r"unlikely|impossible|free (?:of|from)|rather than|instead of)\b|n't\b", re.IGNORECASE)
# Negators that negate nothing here: litotes ("no doubt it is fake"), and "no" as an interjection ("No, it is").
_NOT_A_NEGATION = re.compile(r"\s*(?:(?:a|any)\s+)?(?:doubt|question|only|hard|difficult|surprising|mistaking|"
                             r"denying|wonder)\b", re.IGNORECASE)
_INTERJECTION = re.compile(r"no\s+(?:it|this|that|the|i|we|they)\b", re.IGNORECASE)
_BRIDGE = frozenset("""
    a an the this that these those it its it's image picture photo photograph photos images one any some such
    is are was were be been being am 's seem seems seemed seeming appear appears appeared appearing look looks looked
    looking feel feels like as to of at all in about for by from with consistent typical characteristic indicative
    suggestive evidence sign signs indication indications indicator indicators trace traces hint hints proof
    suggest suggests suggesting suggestive indicate indicates indicating show shows showing mean means reason
    i we you think believe consider find see say expect would do does did has have had
    really truly actually entirely completely fully genuinely clearly obviously necessarily quite very definitely
    just merely simply likely probably certainly visibly apparently overall also even not no never
""".split())
_APOSTROPHES = str.maketrans("\u2019\u2018\u02bc", "'''")  # "don’t" is "don't"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?", re.IGNORECASE)
_HEDGE_MODAL = re.compile(r"\b(?:might|may|maybe|perhaps|possibly|potentially|could(?!\s*(?:not\b|n't)))\b",
                          re.IGNORECASE)
_HEDGE_PHRASE = re.compile(
    r"\b(?:not (?:sure|certain)|unsure|uncertain (?:whether|if|about)|(?:i am|i'm) uncertain|it(?: is|'s) unclear|"
    r"unclear (?:whether|if)|inconclusive|undetermin(?:ed|able)|may or may not|"
    r"(?:hard|difficult|impossible|tough|tricky) to (?:tell|say|determine|know|decide|judge)|"
    r"no way to (?:tell|know|say))\b", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(?:(?:i(?: am|'m)? )?sorry\b|i apologi[sz]e|as an ai\b|"
    r"(?:can ?not|can't|unable to|not able to|won't|will not)\s+(?:[a-z]+\s+){0,2}?"
    r"(?:determine|tell|say|know|decide|verify|confirm|assess|judge|help|assist|answer|comply|provide|classify|"
    r"identify|evaluate|analy[sz]e|be (?:sure|certain|definitive|determined|verified|confirmed))\b)", re.IGNORECASE)


def clean(text: object) -> str:
    """A text with decoder special tokens removed and whitespace trimmed ('' for None / non-strings)."""
    return _SPECIAL_TOKENS.sub(" ", text).strip() if isinstance(text, str) else ""


def answer_text(text: object) -> str:
    """What a generation answers (`final_answer`'s text, special tokens removed): compared with the reference."""
    return clean(final_answer(text).text)


def _negated(clause: str, start: int) -> bool:
    """Whether the verdict word at `start` of `clause` is in the scope of an odd number of negators."""
    flips = 0
    for m in _NEGATOR.finditer(clause, 0, start):
        if _NOT_A_NEGATION.match(clause, m.end()) or _INTERJECTION.match(clause, m.start()):
            continue
        between = _WORD.findall(clause[m.end():start])
        if all(w.lower() in _BRIDGE or w.lower().endswith("n't") for w in between):
            flips += 1
    return flips % 2 == 1


def _clause_labels(clause: str) -> tuple[set[str], bool]:
    """(labels the clause states, whether a verdict in it is hedged by a modal)."""
    labels: set[str] = set()
    hedged = False
    for match in _VERDICT_WORD.finditer(clause):
        before = clause[:match.start()]
        if _INDIRECT.search(before):
            continue
        label = FAKE if match.group("fake") else REAL
        if _negated(clause, match.start()):
            label = REAL if label == FAKE else FAKE
        labels.add(label)
        hedged = hedged or bool(_HEDGE_MODAL.search(before))
    return labels, hedged


def _clauses(sentence: str) -> list[str]:
    cuts = [0] + [p for m in _CLAUSE_BREAK.finditer(sentence) for p in (m.start(), m.end())] + [len(sentence)]
    return [sentence[cuts[i]:cuts[i + 1]] for i in range(0, len(cuts), 2)]


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _declines(sentence: str) -> str | None:
    if _REFUSAL.search(sentence):
        return REFUSAL
    if _HEDGE_PHRASE.search(sentence):
        return HEDGE
    return None


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
    read = body.translate(_APOSTROPHES)  # same length: spans in `read` are spans in `body`
    declined = None
    for start, end in _sentences(read):
        sentence = read[start:end].strip()
        declined = declined or _declines(sentence)
        if sentence.endswith("?"):  # a question (an echoed prompt) states no verdict
            continue
        sentence = _ALTERNATIVE.sub(lambda m: " " * len(m.group(0)), sentence)
        labels: set[str] = set()
        hedged = False
        for clause in _clauses(sentence):
            found, hedge = _clause_labels(clause)
            labels |= found
            hedged = hedged or hedge
        if not labels:
            continue
        if declined:
            return Verdict(None, issue=declined, notes=notes)
        if hedged:
            return Verdict(None, issue=HEDGE, notes=notes)
        if len(labels) > 1:
            return Verdict(None, issue=AMBIGUOUS, notes=notes)
        rest = " ".join(part for part in (body[:start].strip(), body[end:].strip()) if part)
        return Verdict(labels.pop(), rest, notes=notes)
    return Verdict(None, issue=declined or NO_VERDICT, notes=notes)


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
