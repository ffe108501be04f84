"""The DeeptraceReward generation parser: every format it reads, what it refuses, and that it never raises."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.parse import Parsed, box_to_ratio, canonical_box_format, parse_generation, parse_time
from prompts.deeptrace import REAL_ANSWER, VARIANTS, fake_answer


def test_sft_answers_of_every_variant_parse_back_exactly():
    for variant in VARIANTS:
        text = fake_answer([1, 3, 40, 51], 0.4, "The dog has five legs.", variant)
        p = parse_generation(text)
        assert p.label == "fake" and p.box == (1, 3, 40, 51)
        assert p.start == (0.4 if variant in ("full", "no_explanation") else None)
        assert p.explanation == ("The dog has five legs." if variant in ("full", "no_time") else None)
        assert parse_generation(text, strict=True) == p
    real = parse_generation(REAL_ANSWER)
    assert real == Parsed(label="real")


def test_missing_parts_are_reported_not_guessed():
    p = parse_generation(fake_answer([1, 3, 40, 51], 12.0, None, "no_time_no_explanation"))
    assert p.start is None and p.explanation is None
    assert set(p.issues) == {"fake without start time", "fake without explanation"}
    p = parse_generation("FAKE. The unnatural part is at [1, 2, 3] starting 1.0 seconds.")
    assert p.box is None and "fake without box" in p.issues
    assert parse_generation("").issues == ("empty",) and parse_generation(None).label is None
    assert parse_generation("I cannot tell.").issues == ("no label",)


def test_zero_shot_tag_format_app_e():
    text = ("FAKE\n<coordinates>[0, 0, 1280, 720]</coordinates>\n<start_time>2.5 seconds</start_time>\n"
            "<explanation>The hand merges with the cup.</explanation>")
    p = parse_generation(text)
    assert (p.label, p.box, p.start, p.explanation) == ("fake", (0, 0, 1280, 720), 2.5, "The hand merges with the cup.")
    assert parse_generation(text, strict=True) == p
    # bare numbers in the tag, a clock time, an unclosed (cut-off) explanation
    p = parse_generation("The video is FAKE. <coordinates>100, 200, 300.5, 400</coordinates> "
                         "<start_time>00:01.5</start_time> <explanation>Blurry face")
    assert (p.box, p.start, p.explanation) == ((100, 200, 300.5, 400), 1.5, "Blurry face")


def test_verdict_inside_explanation_tag_does_not_count():
    p = parse_generation("<explanation>It looks REAL at first but the legs merge.</explanation> FAKE "
                         "<coordinates>[1, 2, 3, 4]</coordinates>")
    assert p.label == "fake" and p.explanation == "It looks REAL at first but the legs merge."


def test_qwen_box_tokens_and_other_box_spellings():
    p = parse_generation("FAKE. The unnatural part is at <|box_start|>(10,20),(300,400)<|box_end|> starting 1 s.")
    assert p.box == (10, 20, 300, 400) and p.start == 1.0
    assert parse_generation("FAKE <|box_start|>[1, 2, 3, 4]<|box_end|>").box == (1, 2, 3, 4)
    assert parse_generation("FAKE in (10, 20, 30, 40)").box == (10, 20, 30, 40)
    assert parse_generation("FAKE from (0.1,0.2) to (0.3,0.4)").box == (0.1, 0.2, 0.3, 0.4)
    assert parse_generation("FAKE [0.125 0.5 0.75 1.0]").box == (0.125, 0.5, 0.75, 1.0)
    assert parse_generation('**Answer: FAKE**\n```json\n[{"bbox_2d": [12, 34, 56, 78]}]\n```').box == (12, 34, 56, 78)
    # strict (--compat) reads only [x0, y0, x1, y1] and the App. E tag
    assert parse_generation("FAKE <|box_start|>(10,20),(300,400)<|box_end|>", strict=True).box is None
    assert parse_generation("FAKE in (10, 20, 30, 40)", strict=True).box is None


@pytest.mark.parametrize("expr, seconds", [
    ("1.5", 1.5), ("1.5s", 1.5), ("1.5 s", 1.5), ("1.5 sec", 1.5), ("1.5 sec.", 1.5), ("1.5 secs", 1.5),
    ("1.5 second", 1.5), ("1.5 seconds", 1.5), ("1500 ms", 1.5), ("1500 milliseconds", 1.5), ("0:01.5", 1.5),
    ("00:01:30", 90.0), ("1 min", 60.0), ("2 minutes", 120.0), (".5", 0.5), ("3.", 3.0),
    ("abc", None), ("1.5 frames", None), ("1:2:3:4", None), ("", None),
])
def test_time_units(expr, seconds):
    assert parse_time(expr) == seconds


@pytest.mark.parametrize("text, start, end", [
    ("FAKE [1, 2, 3, 4] starting 0.4 seconds.", 0.4, None),
    ("FAKE [1, 2, 3, 4] starting 1.5s.", 1.5, None),
    ("FAKE [1, 2, 3, 4] starting at 2 seconds", 2.0, None),
    ("FAKE [1, 2, 3, 4] from 1.2 to 3.4 seconds", 1.2, 3.4),
    ("FAKE [1, 2, 3, 4] between 0:01 and 0:03.5", 1.0, 3.5),
    ("FAKE [1, 2, 3, 4] 1.2-3.4 s", 1.2, 3.4),
    ("FAKE [1, 2, 3, 4] It starts at 3.2 sec and ends at 4 sec.", 3.2, 4.0),
    ("FAKE [1, 2, 3, 4] The onset is 2.0 seconds", 2.0, None),
    ("FAKE [1, 2, 3, 4] visible at 00:02", 2.0, None),
    ("FAKE <start_time>1.0</start_time><end_time>2.0 s</end_time>", 1.0, 2.0),
    ("FAKE [1, 2, 3, 4] starting at frame 12", None, None),
    ("FAKE [1, 2, 3, 4] starting 12 frames in", None, None),
    ("FAKE the video is 1280 x 720 at 24 fps", None, None),
])
def test_start_and_end_times(text, start, end):
    p = parse_generation(text)
    assert (p.start, p.end) == (start, end)


def test_strict_time_reads_only_the_sft_sentence_and_tags():
    assert parse_generation("FAKE [1, 2, 3, 4] from 1.2 to 3.4 seconds", strict=True).start is None
    assert parse_generation("FAKE [1, 2, 3, 4] starting 1.5 seconds", strict=True).start == 1.5
    assert parse_generation("FAKE <start_time>2 s</start_time>", strict=True).start == 2.0


@pytest.mark.parametrize("text, label", [
    ("FAKE. The video is AI-generated.", "fake"),
    ("REAL. The video is real.", "real"),
    ("  **FAKE**", "fake"),
    ("Answer: REAL", "real"),
    ("'FAKE' <coordinates>", "fake"),
    ("Fake.", "fake"),
    ("After careful review I conclude the video is FAKE.", "fake"),
    ("REAL or FAKE? Hard to say.", None),
    ("It could be REAL; it could be FAKE.", None),
    ("I think this video is AI-generated.", "fake"),
    ("This video is not real.", "fake"),
    ("This is not fake, it is authentic.", "real"),
    ("The video looks real but is actually fake.", None),
    ("Realistic lighting everywhere.", None),
    ("The footage is genuine", "real"),
])
def test_labels(text, label):
    assert parse_generation(text).label == label


def test_strict_labels_need_the_upper_case_verdict():
    assert parse_generation("I think this video is AI-generated.", strict=True).label is None
    assert parse_generation("Fake.", strict=True).label is None
    assert parse_generation("The verdict: FAKE", strict=True).label == "fake"


def test_real_verdict_carries_no_localisation():
    p = parse_generation("REAL. The unnatural part is at [1, 2, 3, 4] starting 1.0 seconds.")
    assert p == Parsed(label="real")


@pytest.mark.parametrize("text, explanation", [
    ("FAKE [1,2,3,4]. The reason is because  the dog\nhas five legs.<|im_end|>", "the dog has five legs."),
    ("FAKE [1,2,3,4]. The reason is that the dog has five legs.", "the dog has five legs."),
    ("FAKE [1,2,3,4]\nExplanation: the arm bends.", "the arm bends."),
    ("FAKE [1,2,3,4]\nReason: the arm bends.</s>", "the arm bends."),
    ("FAKE [1,2,3,4]. The reason is because ", None),
])
def test_explanations(text, explanation):
    assert parse_generation(text).explanation == explanation


def test_box_conventions():
    assert box_to_ratio((128, 72, 640, 360), "pixels", 1280, 720) == (0.1, 0.1, 0.5, 0.5)
    assert box_to_ratio((100, 100, 500, 500), "norm1000") == (0.1, 0.1, 0.5, 0.5)
    assert box_to_ratio((0.1, 0.1, 0.5, 0.5), "norm1") == (0.1, 0.1, 0.5, 0.5)
    assert box_to_ratio((128, 72, 640, 360), "abs", 1280, 720) == (0.1, 0.1, 0.5, 0.5)
    assert [canonical_box_format(n) for n in ("abs", "PIXELS", "0-1000", "norm1", "furlongs", None)] == [
        "pixels", "pixels", "norm1000", "norm1", None, None]
    with pytest.raises(ValueError):
        box_to_ratio((1, 2, 3, 4), "pixels")


# --- properties --------------------------------------------------------------------------------------------------

FRAGMENTS = ["FAKE", "REAL", "fake", "real", "not ", "[", "]", "(", ")", ",", " ", "\n", ".", "-", ":", "0", "1.5",
             "720", "-3", "99999999999999999999", "1e400", "<coordinates>", "</coordinates>", "<start_time>",
             "</start_time>", "<end_time>", "<explanation>", "</explanation>", "<|box_start|>", "<|box_end|>",
             "<|im_end|>", "starting ", "from ", " to ", "seconds", "s", "ms", "min", "at ", "The reason is because ",
             "Explanation:", "Answer:", "**", "'", "\"", "between ", " and ", "frames", "x", "%", "\u00a0", "：", "Ⅻ"]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)),
                                                 max_size=40).map("".join)),
       st.booleans())
def test_parser_never_raises_and_returns_sane_values(text, strict):
    p = parse_generation(text, strict=strict)
    assert isinstance(p, Parsed) and p.label in ("fake", "real", None)
    assert all(not issue.startswith("parser error") for issue in p.issues)
    if p.label != "fake":
        assert p.box is None and p.start is None and p.end is None and p.explanation is None
    if p.box is not None:
        assert len(p.box) == 4 and all(math.isfinite(v) for v in p.box)
    for t in (p.start, p.end):
        assert t is None or (math.isfinite(t) and t >= 0)
    assert p.explanation is None or (p.explanation.strip() == p.explanation and p.explanation)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4000), min_size=4, max_size=4), st.integers(0, 999).map(lambda t: t / 10),
       st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=80),
       st.sampled_from(VARIANTS))
def test_every_sft_answer_round_trips(box, start, explanation, variant):
    text = fake_answer(box, start, explanation, variant)
    p = parse_generation(text)  # the exact SFT grammar
    assert p.label == "fake" and p.box == tuple(box)
    assert p.start == (pytest.approx(start) if variant in ("full", "no_explanation") else None)
    clean = " ".join(explanation.split())
    if variant in ("full", "no_time") and clean and not clean.endswith(("|>", "</s>", "<eos>", "<end_of_turn>")):
        assert p.explanation == clean
    # the general rules read the same answer the same way (a prefix takes it off the exact-grammar path)
    general = parse_generation("Answer: " + text)
    assert (general.label, general.box, general.start) == (p.label, p.box, p.start)
    if p.explanation is not None and not any(t in explanation.lower() for t in ("<explanation", "</explanation")):
        assert general.explanation == p.explanation
