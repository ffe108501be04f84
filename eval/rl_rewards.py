"""Rewards for reinforcement learning (GRPO): the scorers' own per-sample values, one number per completion.

recipes/plugins/rewards.py registers these as ms-swift reward functions; this module holds what they compute, so
that it is importable and tested without ms-swift. A reward never re-implements a metric: it calls the scorer's
per-sample step on the completion and the sample's reference — its converter `meta` and its own answer `solution`
(dataset columns, which ms-swift's GRPO passes to rewards by name), read by the scorer's `read_reference` exactly as
from the SFT row — and reads the value off the scorer's row.

DeeptraceReward (`deeptrace_terms`), each in [0, 1]:
    format     fake samples: 1 if the codec reads the completion strictly as the trained answer, a verdict and
               for FAKE every part the sample's variant asks for (box; start unless no_time*; explanation unless
               no_explanation*)
    verdict    the scorer's per-sample accuracy (1 right, 0 wrong or unparseable)
    grounding  fake samples: the scorer's box IoU in frame ratios (a missing box or a REAL verdict gives 0)
    onset      fake samples of timed variants: 1 - the scorer's time distance (|Δstart| / duration, capped at 1)
A term that does not apply is None (ms-swift skips it: it adds nothing to the weighted sum): a real video is scored
on its verdict only (format, grounding and onset are None), onset is None for variants without times, every term on a
sample of another task. An unparseable completion scores 0 on every term that applies; nothing here raises on a
completion.

FakeClue (`fakeclue_terms`, eval/fakeclue.py `score_response`): verdict (the codec's verdict against meta.label)
and rouge_l (ROUGE-L F-measure of the final answer, reasoning set aside, against the reference answer, in [0, 1]).

Reasoning (`ReasoningJudge`): a DeepfakeJudge pointwise judge at an OpenAI-compatible endpoint scores each completion
1-5 given the sample's media and ground-truth label (prompts/deepfakejudge.py fills the judge's own prompt and reads
its `<score>`); the reward is (score - 1) / 4. Calls go through eval/judge.py's client (bounded concurrency, retries,
an on-disk cache: a completion judged once is never sent again); media are sent as the API baselines send them
(eval/api_baseline.py: images as they are, videos as frames with `Time t s:`). A failed or unparseable call gives the
neutral 0.5 and is counted; it never raises.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common.errors import UserError
from common.join import media_paths
from common.jsonl import write_json
from eval import deeptrace as deeptrace_scorer
from eval import fakeclue as fakeclue_scorer
from eval import judging
from prompts import deepfakejudge as dfj
from prompts import deeptrace as D

log = logging.getLogger(__name__)

DEEPTRACE_TERMS = ("format", "verdict", "grounding", "onset")
FAKECLUE_TERMS = ("verdict", "rouge_l")
NEUTRAL = 0.5  # the judge reward of a failed or unparseable judge call (= score 3 of 1-5)


def _task(meta: Any, default: str) -> str | None:
    if not isinstance(meta, dict):
        return None
    task = meta.get("task") or default
    return task if isinstance(task, str) else None


def _context(media: Sequence[str] | None) -> str:
    return f"GRPO sample ({media[0]})" if media else "GRPO sample"


def _other_task(meta: Any, task: str, media: Sequence[str] | None, reads: str) -> bool:
    """True for another task's sample (its rewards are all None); UserError for a sample without a readable converter
    `meta` (a data error, not a completion's): `reads` says what the rewards read from it."""
    if _task(meta, task) == task:
        return False
    if not isinstance(meta, dict):
        raise UserError(f"{_context(media)}: no converter 'meta' ({reads})")
    return True


def _record(meta: dict[str, Any], solution: object, media_key: str, media: Sequence[str] | None) -> dict[str, Any]:
    """The reference record the scorer reads: meta, media, and the sample's own answer (`solution`) when the data has
    one, so that the truth is what the model was trained on, exactly as the scorer takes it."""
    record: dict[str, Any] = {"meta": meta, media_key: list(media or [])}
    if isinstance(solution, str):
        record["messages"] = [{"role": "assistant", "content": solution}]
    return record


# --- DeeptraceReward ---------------------------------------------------------------------------------------------


def in_format(completion: object, variant: str) -> bool:
    """The completion is the trained answer: read strictly by the codec, with every part the variant's answer holds
    (a box; the onset for prompts.deeptrace.TIMED variants; the reason for EXPLAINED ones)."""
    answer = D.parse(completion, strict=True)
    if answer.label == D.REAL:
        return True
    if answer.label != D.FAKE or answer.box is None:
        return False
    if variant in D.TIMED and answer.start is None:
        return False
    return not (variant in D.EXPLAINED and answer.explanation is None)


def deeptrace_terms(completion: object, meta: Any, videos: Sequence[str] | None = None,
                    solution: object = None) -> dict[str, float | None]:
    """The four DeeptraceReward rewards of one completion (module docstring), from the scorer's per-sample row
    (eval/deeptrace.py `score_response`); all None for another task's sample. `solution`: the sample's own answer
    text (the GRPO recipes put it in the data), else the reference is meta's.

    A sample without a readable converter `meta` raises UserError (a data error, not a completion's)."""
    if _other_task(meta, deeptrace_scorer.NAME, videos, "the DeeptraceReward rewards read the reference from it; "
                   "train on converters/*_to_swift.py output"):
        return dict.fromkeys(DEEPTRACE_TERMS)
    ref = deeptrace_scorer.read_reference(_record(meta, solution, "videos", videos), _context(videos))
    row = deeptrace_scorer.score_response(completion, ref)
    variant = meta.get("variant") or "full"
    fake = ref.truth.label == D.FAKE
    return {
        "format": (1.0 if in_format(completion, variant) else 0.0) if fake else None,
        "verdict": row.correct,
        "grounding": row.iou if fake else None,
        "onset": 1.0 - row.tdist if fake and variant in D.TIMED else None,
    }


# --- FakeClue ----------------------------------------------------------------------------------------------------


def fakeclue_terms(completion: object, meta: Any, rouge: fakeclue_scorer.RougeL | None = None,
                   images: Sequence[str] | None = None, solution: object = None) -> dict[str, float | None]:
    """FakeClue's verdict and ROUGE-L rewards of one completion: the scorer's per-sample step (eval/fakeclue.py
    `score_response`). None for another task's sample; rouge_l None when the sample has no reference answer.

    `rouge`: a RougeL to use (its token cache grows with every text it sees: pass a fresh one per batch)."""
    if _other_task(meta, fakeclue_scorer.NAME, images, "the FakeClue rewards read the label and reference answer "
                   "from it; train on fakeclue_to_swift.py output"):
        return dict.fromkeys(FAKECLUE_TERMS)
    ref = fakeclue_scorer.read_reference(_record(meta, solution, "images", images), _context(images))
    row = fakeclue_scorer.score_response(completion, ref, rouge=rouge or fakeclue_scorer.RougeL())
    return {"verdict": 1.0 if row["correct"] else 0.0, "rouge_l": row["rouge_l"]}


# --- DeepfakeJudge reasoning reward ------------------------------------------------------------------------------


def score_to_reward(score: int) -> float:
    """A pointwise judge score 1..5 as a reward in [0, 1]."""
    return (score - 1) / 4.0


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


class ReasoningJudge:
    """Scores completions with a DeepfakeJudge pointwise judge (module docstring). Thread-safe enough for one
    caller at a time (ms-swift awaits each reward call before the next step)."""

    ENV = {  # environment variable -> what it sets (documented in recipes/README.md)
        "DFJ_JUDGE_BASE_URL": "the judge's OpenAI-compatible base URL (required), e.g. http://127.0.0.1:8000/v1",
        "DFJ_JUDGE_MODEL": "the model name the endpoint serves (required)",
        "DFJ_JUDGE_CACHE": "reply cache JSONL (default OUTPUT_DIR/dfj_reasoning_cache.jsonl, one per rank)",
        "DFJ_JUDGE_CONCURRENCY": "parallel requests (default 16)",
        "DFJ_JUDGE_TIMEOUT": "seconds per request (default 60)",
        "DFJ_JUDGE_RETRIES": "retries per call on 429/5xx/timeouts (default 2)",
        "DFJ_JUDGE_FPS": "frames per second sent for a video (default 1)",
        "DFJ_JUDGE_MAX_FRAMES": "at most this many frames per video (default 4)",
        "DFJ_JUDGE_NEWLINES": "the judge prompt's line endings: lf (default: as upstream's inference reads the "
                              "template, and as converters/deepfakejudge_to_swift.py --build writes judge inputs) or "
                              "crlf (the template's stored bytes)",
    }

    def __init__(self, base_url: str, model: str, *, cache_path: str | os.PathLike[str] | None = None,
                 stats_path: str | os.PathLike[str] | None = None, concurrency: int = 16, timeout: float = 60.0,
                 retries: int = 2, fps: float = 1.0, max_frames: int = 4, newline: str = "lf"):
        from eval.api_baseline import MediaIndex, Settings
        from eval.report_media import media_roots

        self.base_url, self.model = base_url, model
        if newline not in dfj.NEWLINES:
            raise ValueError(f"DFJ_JUDGE_NEWLINES must be one of {', '.join(dfj.NEWLINES)} (got {newline!r})")
        self.newline = newline
        self._judge_args = {"base_url": base_url, "cache_path": cache_path, "concurrency": concurrency,
                            "timeout": timeout, "max_retries": retries}
        self.stats_path = Path(stats_path) if stats_path else None
        self.media = MediaIndex(media_roots(), fps, max_frames)
        self.settings = Settings(SimpleNamespace(no_timestamps=False, image_format="jpeg", jpeg_quality=90,
                                                 detail=None))
        self.counts: Counter[str] = Counter()  # judged, failed, unparseable, not_applicable, media_missing
        self.errors: Counter[str] = Counter()  # reasons of failed calls
        self.judge = self._new_judge()

    @classmethod
    def from_env(cls, output_dir: str | os.PathLike[str] | None = None) -> ReasoningJudge:
        """Settings from DFJ_JUDGE_* (see ENV); a missing endpoint, model or API key is an error at start-up."""
        base_url, model = _env("DFJ_JUDGE_BASE_URL"), _env("DFJ_JUDGE_MODEL")
        missing = [name for name, value in (("DFJ_JUDGE_BASE_URL", base_url), ("DFJ_JUDGE_MODEL", model)) if not value]
        if missing:
            raise ValueError(f"the dfj_reasoning reward needs {' and '.join(missing)}: the DeepfakeJudge pointwise "
                             f"judge's OpenAI-compatible endpoint and served model name (e.g. swift deploy "
                             f"--adapters dfj=CKPT --port 8000 -> http://127.0.0.1:8000/v1, model dfj)")
        from eval.judge import KEY_ENV

        if not os.environ.get(KEY_ENV):
            raise ValueError(f"the dfj_reasoning reward needs {KEY_ENV} (any value, e.g. EMPTY, for a local swift "
                             f"deploy without authentication)")
        world = int(_env("WORLD_SIZE", "1") or 1)
        suffix = f".rank{_env('RANK', '0')}" if world > 1 else ""  # one cache file per process: no interleaved lines
        out = Path(output_dir) if output_dir else None
        cache = _env("DFJ_JUDGE_CACHE") or (out / f"dfj_reasoning_cache{suffix}.jsonl" if out else None)
        if cache and suffix and _env("DFJ_JUDGE_CACHE"):
            cache = f"{cache}{suffix}"
        return cls(base_url, model, cache_path=cache,
                   stats_path=out / f"dfj_reasoning_stats{suffix}.json" if out else None,
                   concurrency=int(_env("DFJ_JUDGE_CONCURRENCY", "16")), timeout=float(_env("DFJ_JUDGE_TIMEOUT", "60")),
                   retries=int(_env("DFJ_JUDGE_RETRIES", "2")), fps=float(_env("DFJ_JUDGE_FPS", "1")),
                   max_frames=int(_env("DFJ_JUDGE_MAX_FRAMES", "4")), newline=_env("DFJ_JUDGE_NEWLINES", "lf"))

    def _new_judge(self):
        from eval.judge import Judge

        return Judge(self.model, temperature=0.0, progress=False, name="DeepfakeJudge reward judge",
                     model_flag="DFJ_JUDGE_MODEL", cache_flag="DFJ_JUDGE_CACHE", **self._judge_args)

    def _plan(self, completion: str, label: str, images: list[str], videos: list[str]):
        from eval.api_baseline import Plan

        items = [self.media.video(v) for v in videos] + [self.media.picture(i) for i in images]
        if any(item is None for item in items):
            return None
        text = dfj.pointwise_prompt(label, completion, newline=self.newline)
        return Plan([{"role": "user", "parts": [*items, text]}], [], "dfj pointwise", 0, [])

    def score(self, completions: Sequence[object], metas: Sequence[Any], images: Sequence[Any] | None = None,
              videos: Sequence[Any] | None = None) -> list[float | None]:
        """One reward per completion: (score - 1) / 4; NEUTRAL (counted) for a failed or unparseable call; None
        where the sample has no ground-truth label the judge prompt can state (real/fake/edited)."""
        from eval.api_baseline import describe, materialise
        from eval.judge import JudgeRequest

        n = len(completions)
        neutral_before = self.neutral
        images = list(images) if images is not None else [None] * n
        videos = list(videos) if videos is not None else [None] * n
        rewards: list[float | None] = [None] * n
        items: dict[int, JudgeRequest] = {}
        for i, (completion, meta) in enumerate(zip(completions, metas, strict=True)):
            label = meta.get("label") if isinstance(meta, dict) else None
            label = label.strip().lower() if isinstance(label, str) else None
            if label not in dfj.LABELS:
                self.counts["not_applicable"] += 1
                continue
            plan = self._plan(judging.cap(completion if isinstance(completion, str) else ""), label,
                              media_paths({"images": images[i]}, "images") or [],
                              media_paths({"videos": videos[i]}, "videos") or [])
            if plan is None:
                self.counts["media_missing"] += 1
                rewards[i] = NEUTRAL
                continue
            key = json.dumps({"messages": describe(plan), "encoding": self.settings.describe()}, sort_keys=True,
                             ensure_ascii=False)
            items[i] = JudgeRequest(lambda plan=plan: materialise(plan, self.settings), key=key,
                                    info={"task": "dfj_reasoning", "label": label})
        if items:
            self._judge(items, rewards)
        self._report(self.neutral - neutral_before)
        return rewards

    def _judge(self, items: dict[int, Any], rewards: list[float | None]) -> None:
        from eval.judge import JudgeError

        try:
            outcome = judging.run(self.judge, items, lambda reply: dfj.parse_score(reply).value, worst=None,
                                  what="reasoning-reward judge calls", desc="dfj_reasoning")
        except JudgeError as exc:  # refused (401/403/404) or unusable: every call of this batch failed
            self.judge = self._new_judge()  # a judge that saw a fatal error stops; the next batch tries again
            self.counts["failed"] += len(items)
            self.errors[str(exc)[:200]] += len(items)
            for i in items:
                rewards[i] = NEUTRAL
        else:
            for i in items:
                score = outcome.scores.get(i)
                if i in outcome.failed:
                    self.counts["failed"] += 1
                    self.errors[outcome.failed[i][:200]] += 1
                elif score is None:
                    self.counts["unparseable"] += 1
                else:
                    self.counts["judged"] += 1
                rewards[i] = NEUTRAL if score is None else score_to_reward(score)

    @property
    def neutral(self) -> int:
        """Completions given the neutral value so far (failed or unparseable calls, media not found)."""
        return self.counts["failed"] + self.counts["unparseable"] + self.counts["media_missing"]

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url, "neutral_value": NEUTRAL,
                "completions": dict(sorted(self.counts.items())), "neutral": self.neutral,
                "errors": dict(self.errors.most_common(10)), "calls_this_judge": self.judge.stats.as_dict()}

    def _report(self, new_neutral: int) -> None:
        """The stats file after every batch; a warning for a batch that gave neutral values."""
        if new_neutral:
            log.warning("dfj_reasoning: %d completions of this batch got the neutral %.1f (%d so far: failed %d, "
                        "unparseable %d, media missing %d; first errors: %s)", new_neutral, NEUTRAL, self.neutral,
                        self.counts["failed"], self.counts["unparseable"], self.counts["media_missing"],
                        "; ".join(list(self.errors)[:2]) or "-")
        if self.stats_path is not None:
            write_json(self.stats_path, self.summary())
