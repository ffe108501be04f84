"""prompts/deepfakejudge.py: the three output parsers set reasoning aside first and never guess; a swapped pairwise
target parses as the other choice (the filled templates and the parsers' cases: tests/eval/test_deepfakejudge.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts import deepfakejudge as P
from prompts.reasoning import UNFINISHED

_reasoning = st.text(st.characters(exclude_characters="<>", exclude_categories=("Cs",)), max_size=60)


@given(_reasoning, st.sampled_from(P.SCORES), _reasoning)
def test_a_judge_score_is_read_after_any_reasoning(reasoning, score, thought):
    text = f"<reasoning>{reasoning}</reasoning>\n<score>{score}</score>"
    assert P.parse_score(text).value == score
    # a score written while thinking is not the answer
    other = 1 if score != 1 else 5
    assert P.parse_score(f"<think>{thought} <score>{other}</score></think>{text}").value == score


@given(_reasoning, st.sampled_from(P.CHOICES))
def test_a_swapped_pairwise_target_parses_as_the_other_choice(reasoning, choice):
    target = f"<reasoning>{reasoning}</reasoning> <answer>{choice}</answer>"
    swapped = P.swap_choice(target)
    assert P.parse_choice(target).value == choice
    assert P.parse_choice(swapped).value == ("B" if choice == "A" else "A")
    assert P.swap_choice(swapped) == target


@pytest.mark.parametrize("parse, text, value", [
    (P.parse_label, "<think>is it <answer>real</answer>?</think><answer>fake</answer>", "fake"),
    (P.parse_choice, "<think>A looks better... no.</think>B", "B"),
    (P.parse_score, "the pixels look fine</think><score>4</score>", 4),  # the template opened <think> in the prompt
])
def test_reasoning_is_set_aside(parse, text, value):
    assert parse(text).value == value


@pytest.mark.parametrize("parse", [P.parse_score, P.parse_choice, P.parse_label])
def test_a_generation_cut_off_while_thinking_is_unparseable(parse):
    found = parse("<think>it is clearly <answer>fake</answer> <score>5</score> A")
    assert found.value is None and found.issue == UNFINISHED


@pytest.mark.parametrize("text", ["Sorry, I can't determine if this image is fake.", "I cannot tell whether it is "
                                  "real.", "It might be edited."])
def test_refusals_are_unparseable_never_a_label(text):
    assert P.parse_label(text).value is None
