"""FakeClue-shaped data for tests and benchmarks: annotation records like FakeClue's `train.json` / `test.json`
(keys image, label 0 = fake / 1 = real, cate, width, height, conversations) and real PNG files for them.

Answers are FakeClue's format, written by its codec (`prompts.fakeclue.render`): `This is a fake image.` / `This is
a real image.` then evidence. Records are ordered by category, as FakeClue's files are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prompts.fakeclue import FAKE, QUESTION, REAL, render
from tests.support.media import write_png

__all__ = ["CATES", "QUESTION", "answer", "record", "records", "write_annotation", "write_images"]
CATES = ("deepfake", "human", "animal", "object", "scene", "satellite", "doc")
FAKE_CLUES = (
    "the skin texture is overly smooth and wax-like, especially around the cheeks and forehead",
    "the eye region has unnatural reflections and mismatched pupil details",
    "the lip contours display bleeding colors and inconsistent texture",
    "the lighting is inconsistent, with mismatched direction and floating hairs",
    "the shadows are unrealistic and the outlines are blurry",
    "the text on the document is garbled and the letters are malformed",
    "the roads are misaligned and the building edges are warped",
    "the fur merges into the background and the paws have too many toes",
)
REAL_CLUES = (
    "The skin texture shows gradual tone transitions with microscopic skin imperfections.",
    "The lighting is consistent with the shadows, which fall in one direction.",
    "The outlines are clear and the objects are organized naturally.",
    "The text is sharp and the layout is regular.",
    "The roads are aligned and the building edges are straight.",
    "The fur has natural detail and the anatomy is correct.",
)


def answer(label: int, index: int) -> str:
    """A FakeClue-style reference answer for record `index` (label 0 = fake, 1 = real)."""
    if label == 0:
        clues = [FAKE_CLUES[(index + k * 3) % len(FAKE_CLUES)] for k in range(3)]
        return render(FAKE, "; ".join(dict.fromkeys(clues)) + ".")
    clues = [REAL_CLUES[(index + k * 2) % len(REAL_CLUES)] for k in range(2)]
    return render(REAL, " ".join(dict.fromkeys(clues)))


def record(index: int, cate: str, label: int, *, width: int = 256, height: int = 256) -> dict:
    kind = "fake" if label == 0 else "real"
    return {"image": f"{cate}/{kind}/{index:06d}.png", "label": label, "cate": cate, "width": width,
            "height": height,
            "conversations": [{"from": "human", "value": QUESTION}, {"from": "gpt", "value": answer(label, index)}]}


def records(n: int, cates: Iterable[str] = CATES) -> Iterator[dict]:
    """`n` records ordered by category (as FakeClue's files are), fake and real alternating within a category."""
    cates = list(cates)
    for i in range(n):
        cate = cates[i * len(cates) // n]
        yield record(i, cate, i % 2)


def write_annotation(path: str | os.PathLike[str], recs: Iterable[dict], indent: int | None = 2) -> Path:
    """Write records as one JSON array (FakeClue's layout: indented, one record after another), streaming."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for i, rec in enumerate(recs):
            fh.write(("," if i else "") + "\n" + json.dumps(rec, indent=indent, ensure_ascii=False))
        fh.write("\n]\n")
    return path


def write_images(root: str | os.PathLike[str], recs: Iterable[dict], width: int = 64, height: int = 48,
                 empty: bool = False) -> int:
    """A real, distinct PNG for every record's `image` under `root` (or empty files with `empty=True`)."""
    root = Path(root)
    n = 0
    for i, rec in enumerate(recs):
        path = root / rec["image"]
        if empty:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            write_png(path, i, width, height)
        n += 1
    return n
