"""prompts/verdict_text.py, the free-text verdict reader every codec shares: one table of answers in ordinary English
(refusals, hedges, negations near and far, litotes, double negation, alternatives, labelled answers, reasoning
blocks) read through BOTH codecs' `parse` — DeeptraceReward's (videos) and FakeClue's (images) — each with its own
vocabulary, and the same reading expected from each; then what differs by vocabulary, and that it never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prompts import deeptrace as D
from prompts import fakeclue as C
from prompts import verdict_text as V
from prompts.reasoning import UNFINISHED

FAKE, REAL = V.FAKE, V.REAL


def deeptrace(text: str) -> tuple[str | None, str | None]:
    """(label, the verdict's issue) of DeeptraceReward's parse; a FAKE answer's missing parts are not verdict issues."""
    answer = D.parse(text)
    issues = [i for i in answer.issues if i in V.ISSUES]
    assert len(issues) <= 1 and (answer.label is None) == bool(issues), answer
    return answer.label, issues[0] if issues else None


def fakeclue(text: str) -> tuple[str | None, str | None]:
    verdict = C.parse(text)
    return verdict.label, verdict.issue


# Each codec reads its medium's word for the subject ({it}); the reading must not depend on it.
CODECS = {"deeptrace": (deeptrace, "video"), "fakeclue": (fakeclue, "image")}

# (answer, what it states: FAKE / REAL, or the issue that makes it unparseable)
TABLE = [
    # verdict words, whole words only; the first sentence that states a verdict decides
    ("The {it} is fake.", FAKE),
    ("This {it} is real.", REAL),
    ("It is a genuine {it}.", REAL),
    ("The {it} appears to be AI-generated: the edges are garbled.", FAKE),
    ("The {it} is most likely synthetic.", FAKE),  # likely / probably state a verdict
    ("I think it's authentic.", REAL),
    ("The {it} has been manipulated.", FAKE),
    ("It is a deepfake.", FAKE),
    ("This {it} looks unrealistic.", V.NO_VERDICT),
    ("The shadows look surreal.", V.NO_VERDICT),
    ("It shows a real-world street but is AI-generated.", FAKE),
    ("Looking at the lighting first. The {it} is authentic.", REAL),
    ("The {it} is fake. Its colours look real.", FAKE),
    ("The {it} is real\nThe reflections are fake-looking", REAL),
    ("The dog runs across the lawn.", V.NO_VERDICT),
    ("", V.EMPTY),
    ("  \n ", V.EMPTY),
    # negation near: it flips the verdict word
    ("The {it} is not real.", FAKE),
    ("It isn't a real {it}.", FAKE),
    ("It could not be real.", FAKE),
    ("The {it} is highly unlikely to be real.", FAKE),
    ("It is real rather than AI-generated.", REAL),
    ("It's a genuine {it}, free of any manipulation.", REAL),
    # negation across bridge words: copulas, appearance and belief verbs, evidence words, subject nouns
    ("The {it} does not appear to be fake.", REAL),
    ("I don't think this is AI-generated.", REAL),
    ("I don\u2019t think this {it} is fake.", REAL),  # a curly apostrophe
    ("There is no evidence that the {it} is fake; it is a real {it}.", REAL),
    ("It shows no signs of being AI-generated.", REAL),
    ("No part of this {it} is fake.", REAL),
    ("There is no way this is real.", FAKE),
    ("This is not a photo of a real person.", FAKE),
    ("Nothing about this {it} looks real.", FAKE),
    # negation far: other words between, so it may or may not reach the verdict word
    ("No artifacts are present in this real {it}.", V.NEGATED),
    ("I'm not convinced that the {it} is real.", V.NEGATED),
    ("None of the motion looks fake.", V.NEGATED),
    # the negator is in another clause, or an interjection
    ("The hands are not natural and the {it} is fake.", FAKE),
    ("It is fake, not real.", FAKE),
    ("No, it is fake.", FAKE),
    ("No it is real.", REAL),
    # litotes are not negations
    ("There is no doubt it is fake.", FAKE),
    ("Without a doubt, this is AI-generated.", FAKE),
    ("It is not hard to see that this is fake.", FAKE),
    ("There is no denying that the {it} is real.", REAL),
    # double negation: two negators cancel
    ("I don't think it is not real.", REAL),
    ("Nothing suggests it is not authentic.", REAL),
    # alternatives and questions state nothing
    ("Is it real or fake?", V.NO_VERDICT),
    ("Does the {it} look real/fake?", V.NO_VERDICT),
    ("Neither real nor fake.", V.NO_VERDICT),
    ("Authentic vs. manipulated: the lighting decides.", V.NO_VERDICT),
    ("Is it real or fake? Looking closely, this is a real {it}.", REAL),
    ("To check whether the {it} is fake, look at the hands. The hands are right, so it is real.", REAL),
    ("Real or fake: hard to say.", V.HEDGE),
    # both
    ("The face is real but the background is fake.", V.AMBIGUOUS),
    ("It looks real but is actually fake.", V.AMBIGUOUS),
    # refusals, in the deciding sentence or before
    ("Sorry, I can't determine if this {it} is AI-generated.", V.REFUSAL),
    ("I cannot determine whether it's real.", V.REFUSAL),
    ("As an AI, I cannot help with that.", V.REFUSAL),
    ("I'm unable to verify the authenticity of this {it}.", V.REFUSAL),
    ("I apologize, but I cannot say. The {it} may be real.", V.REFUSAL),
    ("I cannot tell.", V.REFUSAL),
    ("I couldn't determine if it is fake.", V.REFUSAL),
    # hedges: a modal before the verdict word in its clause, or an uncertainty phrase
    ("It might be fake.", V.HEDGE),
    ("This could be a real {it}.", V.HEDGE),
    ("Maybe it is AI-generated.", V.HEDGE),
    ("The {it} is possibly synthetic.", V.HEDGE),
    ("It might not be fake.", V.HEDGE),
    ("I'm not sure whether the {it} is real.", V.HEDGE),
    ("It is unclear whether the {it} is real or fake.", V.HEDGE),
    ("It's not clear if the {it} is fake.", V.HEDGE),
    ("It is hard to tell. The {it} looks real.", V.HEDGE),
    ("The {it} may or may not be real.", V.HEDGE),
    ("I can't be certain, but it looks fake.", V.HEDGE),
    ("I don't know whether it is real.", V.HEDGE),
    ("I am not sure what this {it} shows.", V.HEDGE),
    # what is not a refusal or a hedge
    ("The {it} is AI-generated: the text is unclear and garbled.", FAKE),
    ("The {it} is fake. I cannot tell which generator made it.", FAKE),  # after the deciding sentence
    ("The {it} is fake. It may have been made with a diffusion model.", FAKE),
    ("The hands may look odd, but the {it} is real.", REAL),  # the modal is in another clause
    # a labelled answer is read first
    ("The lighting looks real. The hands melt. Final answer: fake", FAKE),
    ("**Verdict:** real", REAL),
    ("The colours look real. Answer: I cannot tell.", V.REFUSAL),
    ("Answer: see below. The {it} is real.", REAL),
    # reasoning is set aside first (prompts.reasoning.final_answer)
    ("<think>It looks real... no.</think>The {it} is fake.", FAKE),
    ("<think>It is fake, surely", UNFINISHED),
    ("<reasoning>Waxy skin.</reasoning> <answer>fake</answer>", FAKE),
    ("<think>real or fake?</think><answer>I am not sure.</answer>", V.HEDGE),
    ("the skin looks real at first </think> The {it} is fake.", FAKE),
]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("text, expected", TABLE)
def test_every_codec_reads_free_text_the_same_way(codec: str, text: str, expected: str) -> None:
    parse, subject = CODECS[codec]
    text = text.replace("{it}", subject)
    got = parse(text)
    assert got == ((expected, None) if expected in (FAKE, REAL) else (None, expected)), (codec, text)


def test_issue_names_are_one_vocabulary() -> None:
    assert C.ISSUES == V.ISSUES and D.ISSUES[:len(V.ISSUES)] == V.ISSUES
    assert set(D.ISSUES) - set(V.ISSUES) == {D.NO_BOX, D.NO_START, D.NO_EXPLANATION}  # the format's own parts
    assert (D.REFUSAL, D.HEDGE, D.NEGATED, D.NO_VERDICT, D.AMBIGUOUS) == (C.REFUSAL, C.HEDGE, C.NEGATED,
                                                                          C.NO_VERDICT, C.AMBIGUOUS)


# --- what differs by vocabulary ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, label", [
    ("The man looks real at first. FAKE.", FAKE),  # the marker decides before the words
    ("FAKE - the man looks real but his hand melts.", FAKE),
    ("After careful review I conclude the video is REAL, not synthetic.", REAL),
    ("Fake. The face looks real.", FAKE),  # no marker: the first sentence with a word decides
    ("It was generated by Sora.", FAKE),  # DeeptraceReward reads a bare "generated"
    ("REAL or FAKE? The video is real.", REAL),
    ("It could be REAL; it could be FAKE.", None),
])
def test_deeptrace_reads_its_markers_first(text: str, label: str | None) -> None:
    assert D.parse(text).label == label


def test_strict_reads_only_the_markers() -> None:
    assert D.parse("I think the video is AI-generated.", strict=True).issues == (V.NO_VERDICT,)
    assert D.parse("The verdict: FAKE", strict=True).label == FAKE
    assert D.parse("The video is NOT FAKE.", strict=True).label == REAL
    assert D.parse("Sorry, I can't tell if it is FAKE.", strict=True).issues == (V.REFUSAL,)


def test_fakeclue_has_no_markers_and_no_bare_generated() -> None:
    assert C.parse("The man looks real at first. FAKE.").label == REAL
    assert C.parse("It was generated by Midjourney.").issue == V.NO_VERDICT
    assert C.parse("It was generated by AI.").label == FAKE


def test_the_deciding_sentence_is_returned() -> None:
    vocabulary = V.Vocabulary(V.FAKE_WORDS, V.REAL_WORDS)
    text = "Looking closely. The image is AI-generated. The fur merges."
    reading = vocabulary.read(text)
    assert reading.label == FAKE and text[slice(*reading.span)] == "The image is AI-generated."
    assert vocabulary.read("Hmm. Answer: real").span == (5, 17)
    assert vocabulary.read("It might be fake.") == V.Reading(None, V.HEDGE)


# --- never raises --------------------------------------------------------------------------------------------------

FRAGMENTS = ["fake", "real", "FAKE", "REAL", "AI-generated", "authentic", "not ", "n't ", "no ", "never ", "nothing ",
             "without ", "doubt ", "a ", "the ", "is ", "it ", "think ", "evidence ", "that ", "whether ", "if ", "or ",
             "/", " nor ", " but ", " and ", ",", ";", ":", ".", "?", "!", "\n", " ", "-", "\u2019", "might ", "could ",
             "maybe ", "sorry", "can't tell ", "cannot determine ", "not sure ", "hard to tell ", "Answer:",
             "Final answer: ", "**", "real-world", "No ", "rather than ", "free of ", "unlikely ", "<think>",
             "</think>", "<answer>", "</answer>"]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=40).map("".join)),
       st.booleans())
def test_reading_never_raises(text: str, markers_only: bool) -> None:
    for vocabulary in (C.VOCABULARY, D.VOCABULARY):
        reading = vocabulary.read(text, markers_only=markers_only)
        assert reading.label in (FAKE, REAL, None)
        assert (reading.label is None) == (reading.issue is not None) == (reading.span is None)
        assert reading.issue is None or reading.issue in V.ISSUES
        if reading.span:
            a, b = reading.span
            assert 0 <= a < b <= len(text) and text[a:b].strip()
    for parse in (fakeclue, deeptrace):
        label, issue = parse(text)
        assert label in (FAKE, REAL, None) and (issue is None or issue in V.ISSUES)
