"""prompts/reasoning.py: the thinking is set aside and the final answer is what the codecs read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts.reasoning import ANSWER_TAG, THOUGHT, UNFINISHED, final_answer


@pytest.mark.parametrize(("text", "answer", "notes"), [
    ("FAKE. The video is AI-generated.", "FAKE. The video is AI-generated.", ()),
    ("<think>It looks REAL at first... no.</think>\nFAKE. The video is AI-generated.",
     "FAKE. The video is AI-generated.", (THOUGHT,)),
    ("<THINK >real or fake?</ think> REAL. The video is real.", "REAL. The video is real.", (THOUGHT,)),
    ("the frames look real ... </think>FAKE.", "FAKE.", (THOUGHT,)),  # template opened <think> in the prompt
    ("<think>it is clearly FAKE because", "", (UNFINISHED,)),  # cut off while thinking: no answer
    ("<reasoning>Smooth skin, odd hands.</reasoning> <answer>fake</answer>", "fake", (ANSWER_TAG,)),
    ("<think>hmm</think><answer>REAL</answer>", "REAL", (THOUGHT, ANSWER_TAG)),
    ("<answer>real</answer> wait <answer> fake </answer>", "fake", (ANSWER_TAG,)),  # the last complete tag
    ("<answer>FAKE. The unnatural part is at [1, 2, 3, 4]", "FAKE. The unnatural part is at [1, 2, 3, 4]",
     (ANSWER_TAG,)),  # cut off inside the answer tag
    (None, "", ()),
    ("", "", ()),
])
def test_final_answer(text, answer, notes) -> None:
    found = final_answer(text)
    assert found.text == answer
    assert found.notes == notes


@given(st.text(), st.text(alphabet=st.characters(blacklist_characters="<>")))
def test_thinking_never_leaks_into_the_answer(thought: str, answer: str) -> None:
    found = final_answer(f"<think>{thought.replace('<', ' ')}</think>{answer}")
    assert found.text == answer.strip()
    assert found.notes == (THOUGHT,)
