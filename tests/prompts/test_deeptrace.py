"""prompts/deeptrace.py, the DeeptraceReward answer codec: render and parse as a round trip over every variant, box
convention and edge value; the rounding rule; the question per convention; every format the parser reads, what it
refuses (refusals, hedges, distant negations, unfinished reasoning), times in frames; and that it never raises."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prompts import deeptrace as D
from prompts.deeptrace import (
    BOX_FORMATS,
    FAKE,
    QUESTION,
    REAL,
    REAL_ANSWER,
    VARIANTS,
    Answer,
    answer_box,
    box_format,
    expected_issues,
    fake_answer,
    parse,
    parse_time,
    quantize,
    quantize_box,
    render,
    to_ratio,
)
from prompts.reasoning import ANSWER_TAG, THOUGHT, UNFINISHED

# --- render and parse: the round trip -----------------------------------------------------------------------------

# Edge values of a box in source pixels on a 1280 x 720 frame: 0, the frame edge, halves, fractions.
EDGE_PIXELS = [0.0, 0.5, 1.5, 2.5, 10.5, 10.4999, 639.5, 719.5, 720.0, 1279.5, 1280.0, 0.25, 333.333]
EXPLANATIONS = ["The dog has five legs.", "The hand [left, 3 fingers] merges (at 1.5 seconds) into the cup.",
                "Starting 2 seconds in, the car [0, 0, 5, 5] drives through a wall; REAL people don't do that.",
                "FAKE. The video is AI-generated. The unnatural part is at [1, 2, 3, 4] starting 9.9 seconds.",
                "  spaced\n out\ttext  ", ""]
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="<>"), max_size=80)


def _expected(box_px, start, explanation, variant, fmt, width=1280.0, height=720.0) -> Answer:
    """What the answer of `variant` in convention `fmt` says: rounded numbers, the parts the variant keeps."""
    clean = " ".join(explanation.split()) or None
    x = Answer(FAKE, box=quantize_box(answer_box(box_px, fmt, width, height), fmt),
               start=quantize(start, D.TIME_DECIMALS) if variant in D.TIMED else None,
               explanation=clean if variant in D.EXPLAINED else None)
    return Answer(x.label, x.box, x.start, explanation=x.explanation, issues=expected_issues(x))


@pytest.mark.parametrize("fmt", list(BOX_FORMATS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_and_convention_round_trips_at_edge_values(variant, fmt):
    for i, explanation in enumerate(EXPLANATIONS):
        box = [EDGE_PIXELS[(i + k) % len(EDGE_PIXELS)] for k in range(4)]
        for start in (0.0, 0.05, 0.25, 0.35, 2.45, 12.0):
            x = _expected(box, start, explanation, variant, fmt)
            text = fake_answer(answer_box(box, fmt, 1280, 720), start, explanation, variant, fmt)
            assert render(x, fmt) == text  # rendering the raw numbers = rendering what the answer says
            assert parse(text) == x, text
            assert parse(text, strict=True) == x, text
    assert parse(REAL_ANSWER) == Answer(REAL) and render(Answer(REAL)) == REAL_ANSWER


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(EDGE_PIXELS), st.floats(0, 4000)), min_size=4, max_size=4),
       st.one_of(st.sampled_from([0.0, 0.05, 0.15, 0.25]), st.floats(0, 600)),
       st.one_of(st.sampled_from(EXPLANATIONS), _text), st.sampled_from(VARIANTS), st.sampled_from(list(BOX_FORMATS)),
       st.sampled_from([(1280, 720), (640, 360), (1920, 1080), (1, 1), (4000, 4000)]))
def test_parse_of_render_is_identity(box, start, explanation, variant, fmt, size):
    width, height = size
    x = _expected(box, start, explanation, variant, fmt, width, height)
    text = render(x, fmt)
    assert parse(text) == x
    # the general rules read the same answer the same way (a prefix takes it off the exact-grammar path)
    general = parse("Answer: " + text)
    assert (general.label, general.box, general.start) == (x.label, x.box, x.start)


def test_rounding_is_half_up_on_the_written_value_in_every_convention():
    assert [quantize(v, 0) for v in (10.5, 11.5, 0.5, 2.5, 10.4999)] == [11, 12, 1, 3, 10]
    assert [quantize(v, 1) for v in (0.25, 0.35, 2.45, 0.05, 0.04999)] == [0.3, 0.4, 2.5, 0.1, 0.0]
    assert [quantize(v, 3) for v in (0.1235, 0.0005, 0.9995)] == [0.124, 0.001, 1.0]
    # halves go the same way whatever the convention: 0.5 px of a 1000 px frame is half a 0-1000 grid step
    assert quantize_box(answer_box([0.5, 2.5, 500.5, 1000], "norm1000", 1000, 1000), "norm1000") == (1, 3, 501, 1000)
    assert quantize_box(answer_box([0.5, 2.5, 500.5, 1000], "norm1", 1000, 1000), "norm1") == (0.001, 0.003, 0.501, 1)
    assert quantize_box([0.5, 2.5, 500.5, 1000], "pixels") == (1, 3, 501, 1000)
    assert fake_answer([10.5, 0.0, 1279.5, 720], 0.25, None, "no_explanation") == (
        "FAKE. The video is AI-generated. The unnatural part is at [11, 0, 1280, 720] starting 0.3 seconds.")
    assert fake_answer([0.1235, 0, 1, 0.5], 1, "x", box_format="norm1") == (
        "FAKE. The video is AI-generated. The unnatural part is at [0.124, 0.000, 1.000, 0.500] starting 1.0 seconds. "
        "The reason is because x")


def test_question_states_the_unit_unless_pixels():
    assert D.question() == QUESTION  # the paper's text, byte for byte
    for variant in VARIANTS:
        pixels = D.question(variant)
        assert "grid" not in pixels and "fractions" not in pixels and pixels.startswith("<video> Decide whether")
        grid, fractions = D.question(variant, "norm1000"), D.question(variant, "norm1")
        assert "[x0, y0, x1, y1] format on a 0-1000 grid of the frame" in grid
        assert "[x0, y0, x1, y1] format as fractions of the frame width and height (0 to 1" in fractions
        assert grid.replace(BOX_FORMATS["norm1000"].unit, "") == pixels
    assert D.question("no_time").endswith("in [x0, y0, x1, y1] format, and an explanation.")
    with pytest.raises(ValueError):
        D.question("full", "abs")  # the old spelling is read from data files only, never asked for


def test_box_conventions_have_one_name_each():
    assert D.BOX_FORMAT_NAMES == ("pixels", "norm1000", "norm1")
    assert to_ratio((128, 72, 640, 360), "pixels", 1280, 720) == (0.1, 0.1, 0.5, 0.5)
    assert to_ratio((100, 100, 500, 500), "norm1000") == (0.1, 0.1, 0.5, 0.5)
    assert to_ratio((0.1, 0.1, 0.5, 0.5), "norm1") == (0.1, 0.1, 0.5, 0.5)
    # data files written by earlier converters say `abs`; that is the one other spelling accepted (from meta)
    assert [getattr(box_format(n), "name", None) for n in ("abs", "PIXELS", "norm1000", "norm1", "0-1000", None)] == [
        "pixels", "pixels", "norm1000", "norm1", None, None]
    with pytest.raises(ValueError):
        to_ratio((1, 2, 3, 4), "pixels")
    with pytest.raises(ValueError):
        to_ratio((1, 2, 3, 4), "abs")


# --- no silent guesses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, issue", [
    ("Sorry, I can't determine if this video is AI-generated.", D.REFUSAL),
    ("I cannot determine whether it's real", D.REFUSAL),
    ("I'm not sure whether this video is REAL.", D.HEDGE),
    ("It is unclear if the footage is authentic.", D.HEDGE),
    ("It might be fake.", D.HEDGE),
    ("I am unable to tell if the video is synthetic or genuine.", D.REFUSAL),
    ("I'm not convinced that this video is real.", D.NEGATED),  # "not" may or may not reach "real"
    ("None of the motion looks FAKE.", D.NEGATED),
    ("<think>It is clearly FAKE because the hand", UNFINISHED),
])
def test_refusals_hedges_and_distant_negations_are_unparseable(text, issue):
    answer = parse(text)
    assert answer.label is None and answer.issues == (issue,)


@pytest.mark.parametrize("text, label", [
    # the negation reaches the verdict word (only bridge words between): read, not refused
    ("I don't think this is AI-generated.", REAL),
    ("The video does not appear to be fake.", REAL),
    ("There is no doubt that this video is FAKE", FAKE),  # litotes
])
def test_negations_that_reach_the_verdict_word_are_read(text, label):
    assert parse(text).label == label


def test_a_leading_verdict_stands_beside_a_hedge_about_details():
    answer = parse("FAKE. I cannot determine the exact start, but the hand [1, 2, 3, 4] is wrong.")
    assert answer.label == FAKE and answer.box == (1, 2, 3, 4) and D.HEDGE not in answer.issues
    assert parse("REAL. I can't tell whether anything is off.").label == REAL


def test_reasoning_is_set_aside_and_answer_tags_read():
    sft = fake_answer([1, 2, 3, 4], 0.5, "x")
    answer = parse(f"<think>Looks REAL at first... no.</think>\n{sft}")
    assert (answer.label, answer.box, answer.start, answer.explanation) == (FAKE, (1, 2, 3, 4), 0.5, "x")
    assert answer.notes == (THOUGHT,) and answer.issues == ()
    answer = parse(f"<reasoning>odd hands</reasoning><answer>{sft}</answer>")
    assert answer.box == (1, 2, 3, 4) and answer.notes == (ANSWER_TAG,)
    assert parse("<think>REAL or FAKE?</think><answer>REAL</answer>").label == REAL
    assert parse("<think>it is FAKE, I think").issues == (UNFINISHED,)


@pytest.mark.parametrize("text, start_frame, end_frame", [
    ("FAKE [1, 2, 3, 4] starting at frame 12", 12, None),
    ("FAKE [1, 2, 3, 4] starting 12 frames in", 12, None),
    ("FAKE [1, 2, 3, 4] from frame 12 to frame 30", 12, 30),
    ("FAKE [1, 2, 3, 4] it appears in frame #7", 7, None),
    ("FAKE <start_time>frame 40</start_time>", 40, None),
    ("FAKE the video is 1280 x 720 at 24 fps", None, None),
    ("FAKE [1, 2, 3, 4] starting 1.5 seconds, around frame 36", None, None),  # seconds given: frames not needed
])
def test_a_time_in_frames_is_not_seconds(text, start_frame, end_frame):
    answer = parse(text)
    assert (answer.start_frame, answer.end_frame) == (start_frame, end_frame)
    if start_frame is not None:
        assert answer.start is None and D.FRAMES in answer.notes and D.NO_START not in answer.issues
    assert parse("FAKE [1, 2, 3, 4] starting at frame 12", strict=True).start_frame is None
    assert parse("FAKE <start_time>frame 40</start_time>", strict=True).start_frame == 40


# --- every format the parser reads ---------------------------------------------------------------------------------


def test_missing_parts_are_reported_not_guessed():
    p = parse(fake_answer([1, 3, 40, 51], 12.0, None, "no_time_no_explanation"))
    assert p.start is None and p.explanation is None
    assert set(p.issues) == {"fake without start time", "fake without explanation"}
    p = parse("FAKE. The unnatural part is at [1, 2, 3] starting 1.0 seconds.")
    assert p.box is None and "fake without box" in p.issues
    assert parse("").issues == ("empty",) and parse(None).label is None
    assert parse("I cannot tell.").issues == ("refusal",)
    assert parse("The dog runs.").issues == ("no verdict",)


def test_zero_shot_tag_format_app_e():
    text = ("FAKE\n<coordinates>[0, 0, 1280, 720]</coordinates>\n<start_time>2.5 seconds</start_time>\n"
            "<explanation>The hand merges with the cup.</explanation>")
    p = parse(text)
    assert (p.label, p.box, p.start, p.explanation) == ("fake", (0, 0, 1280, 720), 2.5, "The hand merges with the cup.")
    assert parse(text, strict=True) == p
    # bare numbers in the tag, a clock time, an unclosed (cut-off) explanation
    p = parse("The video is FAKE. <coordinates>100, 200, 300.5, 400</coordinates> "
              "<start_time>00:01.5</start_time> <explanation>Blurry face")
    assert (p.box, p.start, p.explanation) == ((100, 200, 300.5, 400), 1.5, "Blurry face")


def test_verdict_inside_explanation_tag_does_not_count():
    p = parse("<explanation>It looks REAL at first but the legs merge.</explanation> FAKE "
              "<coordinates>[1, 2, 3, 4]</coordinates>")
    assert p.label == "fake" and p.explanation == "It looks REAL at first but the legs merge."


def test_qwen_box_tokens_and_other_box_spellings():
    p = parse("FAKE. The unnatural part is at <|box_start|>(10,20),(300,400)<|box_end|> starting 1 s.")
    assert p.box == (10, 20, 300, 400) and p.start == 1.0
    assert parse("FAKE <|box_start|>[1, 2, 3, 4]<|box_end|>").box == (1, 2, 3, 4)
    assert parse("FAKE in (10, 20, 30, 40)").box == (10, 20, 30, 40)
    assert parse("FAKE from (0.1,0.2) to (0.3,0.4)").box == (0.1, 0.2, 0.3, 0.4)
    assert parse("FAKE [0.125 0.5 0.75 1.0]").box == (0.125, 0.5, 0.75, 1.0)
    assert parse('**Answer: FAKE**\n```json\n[{"bbox_2d": [12, 34, 56, 78]}]\n```').box == (12, 34, 56, 78)
    # strict (--compat) reads only [x0, y0, x1, y1] and the App. E tag
    assert parse("FAKE <|box_start|>(10,20),(300,400)<|box_end|>", strict=True).box is None
    assert parse("FAKE in (10, 20, 30, 40)", strict=True).box is None


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
    p = parse(text)
    assert (p.start, p.end) == (start, end)


def test_strict_time_reads_only_the_sft_sentence_and_tags():
    assert parse("FAKE [1, 2, 3, 4] from 1.2 to 3.4 seconds", strict=True).start is None
    assert parse("FAKE [1, 2, 3, 4] starting 1.5 seconds", strict=True).start == 1.5
    assert parse("FAKE <start_time>2 s</start_time>", strict=True).start == 2.0


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
    ("The video is NOT FAKE.", "real"),
    ("The video looks real but is actually fake.", None),
    ("Realistic lighting everywhere.", None),
    ("The footage is genuine", "real"),
])
def test_labels(text, label):
    assert parse(text).label == label


def test_strict_labels_need_the_upper_case_verdict():
    assert parse("I think this video is AI-generated.", strict=True).label is None
    assert parse("Fake.", strict=True).label is None
    assert parse("The verdict: FAKE", strict=True).label == "fake"


def test_real_verdict_carries_no_localisation():
    assert parse("REAL. The unnatural part is at [1, 2, 3, 4] starting 1.0 seconds.") == Answer(label="real")


@pytest.mark.parametrize("text, explanation", [
    ("FAKE [1,2,3,4]. The reason is because  the dog\nhas five legs.<|im_end|>", "the dog has five legs."),
    ("FAKE [1,2,3,4]. The reason is that the dog has five legs.", "the dog has five legs."),
    ("FAKE [1,2,3,4]\nExplanation: the arm bends.", "the arm bends."),
    ("FAKE [1,2,3,4]\nReason: the arm bends.</s>", "the arm bends."),
    ("FAKE [1,2,3,4]. The reason is because ", None),
])
def test_explanations(text, explanation):
    assert parse(text).explanation == explanation


# --- never raises ----------------------------------------------------------------------------------------------------

FRAGMENTS = ["FAKE", "REAL", "fake", "real", "not ", "[", "]", "(", ")", ",", " ", "\n", ".", "-", ":", "0", "1.5",
             "720", "-3", "99999999999999999999", "1e400", "<coordinates>", "</coordinates>", "<start_time>",
             "</start_time>", "<end_time>", "<explanation>", "</explanation>", "<|box_start|>", "<|box_end|>",
             "<|im_end|>", "starting ", "from ", " to ", "seconds", "s", "ms", "min", "at ", "The reason is because ",
             "Explanation:", "Answer:", "**", "'", "\"", "between ", " and ", "frames", "frame ", "x", "%", "\u00a0",
             "：", "Ⅻ", "<think>", "</think>", "<answer>", "</answer>", "can't tell if ", "maybe "]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)),
                                                 max_size=40).map("".join)),
       st.booleans())
def test_parser_never_raises_and_returns_sane_values(text, strict):
    p = parse(text, strict=strict)
    assert isinstance(p, Answer) and p.label in ("fake", "real", None)
    assert all(issue in D.ISSUES for issue in p.issues)
    if p.label != "fake":
        assert p.box is None and p.start is None and p.end is None and p.explanation is None
        assert p.start_frame is None and p.end_frame is None
    if p.box is not None:
        assert len(p.box) == 4 and all(math.isfinite(v) for v in p.box)
    for t in (p.start, p.end, p.start_frame, p.end_frame):
        assert t is None or (math.isfinite(t) and t >= 0)
    assert p.explanation is None or (p.explanation.strip() == p.explanation and p.explanation)


def test_judge_reply_reasoning_is_set_aside():
    assert D.parse_judge_score("<think>Could be 0 or 1; the texts share 2 words.</think> 0.5") == 0.5
    assert D.parse_judge_score("<think>1? 0?") is None  # cut off while thinking: no score, never a guess
