"""ms-swift plugin: the repository's reward functions for GRPO, registered in `swift.rewards.orms`. Load it with

    swift rlhf --rlhf_type grpo --external_plugins recipes/plugins/rewards.py \\
        --reward_funcs deeptrace_format deeptrace_verdict deeptrace_grounding deeptrace_onset \\
        --reward_weights 0.25 1 1 1 ...

(the GRPO recipes do: recipes/*_grpo.sh, presets in recipes/configs/rewards/*.yaml). Each reward reads the sample's
converter `meta` (a dataset column, which GRPO passes to rewards by name) and calls the scorer's own per-sample step:
what they compute is eval/rl_rewards.py, tested there without ms-swift. The sample's own answer reaches the rewards
as the column `solution` (GRPO removes the answer from `messages`; the recipes add it: recipes/lib.py solutions), so
that the reference is exactly the one the scorer reads from the SFT row.

| name | class (log name: rewards/<class>/mean) | value |
|---|---|---|
| deeptrace_format | DeeptraceFormat | 1 if in the trained answer format (the variant's parts); fake videos only |
| deeptrace_verdict | DeeptraceVerdict | 1 if REAL/FAKE is right |
| deeptrace_grounding | DeeptraceGrounding | box IoU in frame ratios; fake videos only |
| deeptrace_onset | DeeptraceOnset | 1 - time distance; fake videos of timed variants only |
| fakeclue_verdict | FakeClueVerdict | 1 if real/fake is right |
| fakeclue_rouge_l | FakeClueRougeL | ROUGE-L F-measure against the reference answer |
| dfj_reasoning | DfjReasoning (async) | DeepfakeJudge pointwise score s: (s - 1) / 4; failed calls 0.5, counted |

A reward that does not apply to a sample (grounding on a real video, a FakeClue reward on a DeeptraceReward sample)
returns None: ms-swift leaves it out of the weighted sum and of the reward's mean.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from swift.rewards import ORM, AsyncORM, orms  # noqa: E402

from eval import rl_rewards  # noqa: E402


def _column(kwargs: dict[str, Any], name: str, n: int, reward: str, required: bool = True) -> list[Any]:
    value = kwargs.get(name)
    if value is None:
        if required:
            raise ValueError(f"reward {reward} needs the dataset column {name!r} (converter output keeps it; ms-swift "
                             f"passes dataset columns to rewards by name)")
        return [None] * n
    return list(value)


class _Term(ORM):
    """One term of a task's per-sample rewards (eval/rl_rewards.py), for a batch of completions: the columns GRPO
    passes by name (meta, the sample's media, solution), one call of the task's terms function per completion."""
    term = ""
    name = ""
    media = ""  # the task's media column: videos | images

    def batch_terms(self) -> Callable[[str, Any, Any, Any], dict[str, float | None]]:
        """terms(completion, meta, media, solution) for one batch."""
        raise NotImplementedError

    def __call__(self, completions: list[str], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        metas = _column(kwargs, "meta", n, self.name)
        media = _column(kwargs, self.media, n, self.name, required=False)
        solutions = _column(kwargs, "solution", n, self.name, required=False)
        terms = self.batch_terms()
        return [terms(c, m, x, s)[self.term] for c, m, x, s in zip(completions, metas, media, solutions, strict=True)]


class _DeeptraceTerm(_Term):
    media = "videos"

    def batch_terms(self) -> Callable[[str, Any, Any, Any], dict[str, float | None]]:
        return rl_rewards.deeptrace_terms


class DeeptraceFormat(_DeeptraceTerm):
    term, name = "format", "deeptrace_format"


class DeeptraceVerdict(_DeeptraceTerm):
    term, name = "verdict", "deeptrace_verdict"


class DeeptraceGrounding(_DeeptraceTerm):
    term, name = "grounding", "deeptrace_grounding"


class DeeptraceOnset(_DeeptraceTerm):
    term, name = "onset", "deeptrace_onset"


class _FakeClueTerm(_Term):
    media = "images"

    def batch_terms(self) -> Callable[[str, Any, Any, Any], dict[str, float | None]]:
        # a fresh ROUGE-L per batch: its token cache grows with every text it sees (rl_rewards.fakeclue_terms)
        rouge = rl_rewards.fakeclue_scorer.RougeL() if self.term == "rouge_l" else None
        return lambda completion, meta, images, solution: rl_rewards.fakeclue_terms(completion, meta, rouge, images,
                                                                                    solution)


class FakeClueVerdict(_FakeClueTerm):
    term, name = "verdict", "fakeclue_verdict"


class FakeClueRougeL(_FakeClueTerm):
    term, name = "rouge_l", "fakeclue_rouge_l"


class DfjReasoning(AsyncORM):
    """The DeepfakeJudge reasoning reward; settings from DFJ_JUDGE_* (eval/rl_rewards.py ReasoningJudge.ENV)."""

    def __init__(self, args: Any = None, **kwargs: Any):
        super().__init__(args, **kwargs)
        self.judge = rl_rewards.ReasoningJudge.from_env(getattr(args, "output_dir", None))

    async def __call__(self, completions: list[str], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        metas = _column(kwargs, "meta", n, "dfj_reasoning")
        images = _column(kwargs, "images", n, "dfj_reasoning", required=False)
        videos = _column(kwargs, "videos", n, "dfj_reasoning", required=False)
        return await asyncio.to_thread(self.judge.score, completions, metas, images, videos)


REWARDS = {
    "deeptrace_format": DeeptraceFormat,
    "deeptrace_verdict": DeeptraceVerdict,
    "deeptrace_grounding": DeeptraceGrounding,
    "deeptrace_onset": DeeptraceOnset,
    "fakeclue_verdict": FakeClueVerdict,
    "fakeclue_rouge_l": FakeClueRougeL,
    "dfj_reasoning": DfjReasoning,
}
orms.update(REWARDS)
