"""DeeptraceReward SFT question and answers (paper sec. 3.2), with the three supervision ablations.

The full question is the paper's text (prompts/deeptrace/question.txt). The paper does not print the ablation
prompts; ours drop exactly the clause that asks for what the answer no longer contains (see ABLATION_QUESTIONS).
Answers: `[BBox]` = `[x0, y0, x1, y1]` in integer source-video pixels; `[Time]` = onset in seconds, one decimal
(the resolution VideoLLaMA3 timestamps frames with). A trace without an explanation gets no reason sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prompts import load

VARIANTS = ("full", "no_time", "no_explanation", "no_time_no_explanation")

QUESTION = load("deeptrace/question.txt")
_ASK = "in [x0, y0, x1, y1] format, the starting time of them, and an explanation."
ABLATION_QUESTIONS = {
    "full": _ASK,
    "no_time": "in [x0, y0, x1, y1] format, and an explanation.",
    "no_explanation": "in [x0, y0, x1, y1] format, and the starting time of them.",
    "no_time_no_explanation": "in [x0, y0, x1, y1] format.",
}

REAL_ANSWER = "REAL. The video is real. There is no unnatural part."
FAKE_PREFIX = "FAKE. The video is AI-generated."


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return variant


def question(variant: str = "full") -> str:
    check_variant(variant)
    assert QUESTION.endswith(_ASK)
    return QUESTION[: -len(_ASK)] + ABLATION_QUESTIONS[variant]


def format_bbox(bbox: Sequence[float], decimals: int = 0) -> str:
    """`[x0, y0, x1, y1]`: integers (pixels, 0-1000 grid; halves round up), or `decimals` places (0-1 coordinates)."""
    if decimals:
        return "[" + ", ".join([f"{v:.{decimals}f}" for v in bbox]) + "]"
    return "[" + ", ".join([str(math.floor(v + 0.5)) for v in bbox]) + "]"


def format_time(seconds: float) -> str:
    return f"{seconds:.1f}"


def fake_answer(bbox: Sequence[float], start: float, explanation: str | None, variant: str = "full",
                bbox_decimals: int = 0) -> str:
    """The paper's FAKE answer for one trace, minus what the ablation `variant` removes."""
    return fake_answers(bbox, start, explanation, (variant,), bbox_decimals)[0]


def fake_answers(bbox: Sequence[float], start: float, explanation: str | None, variants: Sequence[str],
                 bbox_decimals: int = 0) -> list[str]:
    """`fake_answer` for each of `variants`, the shared parts formatted once."""
    for variant in variants:
        check_variant(variant)
    head = f"{FAKE_PREFIX} The unnatural part is at {format_bbox(bbox, bbox_decimals)}"
    timed = f"{head} starting {format_time(start)} seconds."
    explanation = " ".join((explanation or "").split())
    reason = f" The reason is because {explanation}" if explanation else ""
    return [(timed if v in ("full", "no_explanation") else head + ".") + (reason if v in ("full", "no_time") else "")
            for v in variants]
