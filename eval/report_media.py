"""Media helpers shared by the report (eval/report.py) and the API baselines (eval/api_baseline.py).

Frames are read with decord (falling back to PyAV), drawn on with Pillow and encoded deterministically (the same
frames give the same bytes, so the API baseline's cache keys stay valid across runs).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common.media import VideoInfo, probe_video  # noqa: F401  (re-exported for the report and the baseline)

GT_COLOUR = (0, 200, 80)  # ground truth: green
PRED_COLOUR = (255, 40, 40)  # prediction: red


def resolve_media(path: str, roots: Sequence[str | os.PathLike[str]] = ()) -> Path | None:
    """An existing file for a media path from a JSONL line: as written (absolute, or relative to the CWD), else
    relative to each of `roots` (ms-swift resolves relative paths against ROOT_IMAGE_DIR or the CWD)."""
    candidates = [Path(path)]
    if not os.path.isabs(path):
        candidates += [Path(root) / path for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def media_roots(extra: Iterable[str | os.PathLike[str]] = (), references: str | os.PathLike[str] | None = None
                ) -> list[Path]:
    """Where relative media paths are looked up: the given roots, $ROOT_IMAGE_DIR, the references' directory."""
    roots = [Path(r) for r in extra]
    if os.environ.get("ROOT_IMAGE_DIR"):
        roots.append(Path(os.environ["ROOT_IMAGE_DIR"]))
    if references is not None:
        roots.append(Path(references).resolve().parent)
    return roots


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_index(t: float, info: VideoInfo) -> int:
    """The frame shown at time `t` seconds (frame k spans [k/fps, (k+1)/fps)), clipped to the video."""
    if info.frame_count <= 0:
        return 0
    k = math.floor(t * info.fps + 1e-6) if info.fps > 0 and math.isfinite(t) else 0
    return min(max(k, 0), info.frame_count - 1)


def sample_indices(info: VideoInfo, fps: float, max_frames: int) -> list[int]:
    """Frames at `fps` (t = 0, 1/fps, 2/fps, … < duration); more than `max_frames` → `max_frames` spread uniformly
    over them (first and last kept). At least one frame."""
    n = max(1, math.ceil(info.duration * fps - 1e-9)) if info.duration > 0 else 1
    times = [i / fps for i in range(n)]
    if len(times) > max_frames:
        picks = np.linspace(0, len(times) - 1, max_frames).round().astype(int)
        times = [times[i] for i in sorted(set(picks.tolist()))]
    indices = []
    for t in times:
        k = frame_index(t, info)
        if k not in indices:
            indices.append(k)
    return indices


def read_frames(path: str | os.PathLike[str], indices: Sequence[int]) -> list[np.ndarray]:
    """RGB uint8 arrays of the given frames (decord; PyAV if decord cannot read the file)."""
    path = os.fspath(path)
    if not indices:
        return []
    try:
        import decord

        vr = decord.VideoReader(path, num_threads=1)
        wanted = [min(max(int(i), 0), len(vr) - 1) for i in indices]
        batch = vr.get_batch(wanted).asnumpy()
        return [np.ascontiguousarray(frame) for frame in batch]
    except Exception:  # decord's own error types; fall back to PyAV
        pass
    import av

    wanted = sorted(set(int(i) for i in indices))
    found: dict[int, np.ndarray] = {}
    last = None
    with av.open(path) as container:
        for k, frame in enumerate(container.decode(video=0)):
            last = frame.to_ndarray(format="rgb24")
            if k in wanted:
                found[k] = last
            if k >= wanted[-1]:
                break
    if last is None:
        raise ValueError(f"{path}: no video frames")
    return [found.get(int(i), last) for i in indices]


def encode_image(image: Image.Image | np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return buffer.getvalue()


def scaled(image: Image.Image, width: int = 480, min_width: int = 320) -> Image.Image:
    """Fit into `width` pixels wide; tiny media are enlarged (pixelated, integer factor) to at least `min_width`."""
    w, h = image.size
    if w > width:
        return image.resize((width, max(1, round(h * width / w))), Image.Resampling.BILINEAR)
    if w < min_width:
        factor = math.ceil(min_width / max(w, 1))
        return image.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    return image


def draw_boxes(image: Image.Image, boxes: Iterable[tuple[Sequence[float] | None, tuple[int, int, int]]]
               ) -> Image.Image:
    """Draw boxes given in frame ratios (x0/W, y0/H, x1/W, y1/H) on a copy of `image`, each later one thinner, so
    that coinciding boxes (ground truth first, prediction second) all stay visible."""
    image = image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    w, h = image.size
    line = max(2, round(min(w, h) / 120))
    boxes = list(boxes)
    for k, (box, colour) in enumerate(boxes):
        if box is None or not all(math.isfinite(v) for v in box):
            continue
        x0, y0, x1, y1 = (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line + 2 * (len(boxes) - 1 - k))
    return image
