"""Real media for tests, demos and benchmarks: PNG images and H.264 mp4 clips written with Pillow and PyAV.

Each clip is visibly different (colour, moving square) so that a model can tell clips apart.
"""

from __future__ import annotations

import colorsys
import os
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
