"""Real media for tests, demos and benchmarks: PNG images and H.264 mp4 clips written with Pillow and PyAV.

Each clip is visibly different (colour, moving square) so that a model can tell clips apart.
"""

from __future__ import annotations

import colorsys
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def _colour(index: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.8, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def frame_array(index: int, t: int, width: int, height: int) -> np.ndarray:
    """Frame `t` of clip `index`: a coloured background with a white square moving across it."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:] = _colour(index)
    side = max(4, min(width, height) // 4)
    x = (t * 3 + index * 7) % max(1, width - side)
    y = (index * 5) % max(1, height - side)
    img[y : y + side, x : x + side] = 255
    return img


def write_png(path: str | os.PathLike[str], index: int, width: int = 112, height: int = 84) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame_array(index, 0, width, height)).save(path)
    return path


def write_mp4(path: str | os.PathLike[str], index: int, width: int = 64, height: int = 48,
              fps: int = 4, frames: int = 8) -> Path:
    """Write a real H.264 mp4 (yuv420p, so width and height must be even)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_array(index, t, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_indexed_mp4(path: str | os.PathLike[str], seconds: float, fps: float, width: int = 64,
                      height: int = 48) -> Path:
    """A clip of round(seconds x fps) frames whose frame t shows t in binary (8x8 blocks, white = 1), readable back
    with `frame_index` after lossy coding: lets a test tell which source frame a sampler picked."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols, rows = width // 8, height // 8
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast", "bf": "0"}
        for t in range(round(seconds * fps)):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            for bit in range(cols * rows):
                if t >> bit & 1:
                    y, x = divmod(bit, cols)
                    img[y * 8:(y + 1) * 8, x * 8:(x + 1) * 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_index(frame: np.ndarray) -> int:
    """The number a `write_indexed_mp4` frame shows (frame: H x W x 3, uint8)."""
    height, width = frame.shape[:2]
    cols = width // 8
    blocks = frame[: height // 8 * 8, : cols * 8].mean(axis=2).reshape(height // 8, 8, cols, 8).mean(axis=(1, 3))
    return sum(1 << bit for bit, white in enumerate(blocks.flatten() > 128) if white)
