"""Reference and prediction files for the eval tests, shaped like the converter's output and swift infer's results.

Answers come from `prompts.deeptrace` — exactly what the converter writes and models are trained to emit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prompts.deeptrace import REAL_ANSWER, answer_box, fake_answer, question


def reference(video_id: str, label: str, *, bbox=None, start=None, end=None, explanation=None, categories=(),
              source=None, width=1280, height=720, duration=5.0, variant="full", answer_format="pixels",
              answer: str | None = None, task="deeptrace") -> dict[str, Any]:
    if answer is None:
        answer = (fake_answer(answer_box(bbox, answer_format, width, height), start, explanation, variant,
                              answer_format) if label == "fake" else REAL_ANSWER)
    return {
        "messages": [{"role": "user", "content": question(variant, answer_format)},
                     {"role": "assistant", "content": answer}],
        "videos": [f"/data/videos/{video_id}.mp4"],
        "meta": {"task": task, "video_id": video_id, "label": label, "bbox": bbox, "start": start, "end": end,
                 "width": width, "height": height, "duration": duration, "fps": 24.0, "explanation": explanation,
                 "categories": list(categories), "source": source if label == "fake" else "LLaVA-Video-178K",
                 "variant": variant, "bbox_format": "pixels", "answer_bbox_format": answer_format, "split": "test"},
    }


def prediction(ref: dict[str, Any], response: str | None = None) -> dict[str, Any]:
    """A swift infer result line for `ref` (meta dropped, as swift does); `response` defaults to the reference."""
    answer = ref["messages"][-1]["content"]
    response = answer if response is None else response
    return {"response": response, "labels": answer,
            "messages": [ref["messages"][0], {"role": "assistant", "content": response}],
            "images": None, "videos": list(ref["videos"]), "objects": None, "logprobs": None, "dataset": "test.jsonl"}


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def standard_set() -> list[dict[str, Any]]:
    """8 fake samples on 6 videos (one with two traces), 4 real: explanations, categories, sources, a no-explanation
    trace."""
    return [
        reference("v1", "fake", bbox=[100, 100, 300, 300], start=1.0, end=2.5, explanation="The dog has five legs.",
                  categories=["object distortion"], source="Kling 1.0"),
        reference("v1", "fake", bbox=[600, 200, 900, 500], start=2.0, end=3.0,
                  explanation="The cat merges with the sofa.", categories=["object merging"], source="Kling 1.0"),
        reference("v2", "fake", bbox=[0, 0, 640, 360], start=0.5, explanation=None, source="Pika 1.5"),
        reference("v3", "fake", bbox=[10, 20, 110, 220], start=3.2, end=4.0, explanation="The hand has six fingers.",
                  categories=["object distortion", "unexpected move"], source="Sora"),
        reference("v4", "fake", bbox=[500, 300, 700, 600], start=0.0, explanation="The car drives through a wall.",
                  categories=["object trajectory"], source="Gen-3"),
        reference("v5", "fake", bbox=[1000, 100, 1200, 300], start=4.5, explanation="The bird disappears mid-air.",
                  categories=["object disappearance"], source="Gen-3", duration=6.0),
        reference("v6", "fake", bbox=[200, 400, 400, 700], start=1.5, explanation="The background wall bends.",
                  categories=["background distortion"], source="Pika 1.5"),
        reference("v6", "fake", bbox=[50, 50, 150, 150], start=2.5, explanation="A second sun appears.",
                  categories=["redundant object"], source="Pika 1.5"),
        reference("r1", "real"),
        reference("r2", "real"),
        reference("r3", "real"),
        reference("r4", "real"),
    ]
