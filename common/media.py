"""Video probing (size, fps, frame count, duration) with decord, falling back to PyAV."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction

from common.errors import UserError


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "duration": self.duration}


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's geometry and timing; a file neither decord nor PyAV can open raises `UserError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: video not found")
    errors = []
    try:
        import decord

        vr = decord.VideoReader(path, num_threads=1)
        h, w = vr[0].shape[:2] if len(vr) else (0, 0)
        return VideoInfo(width=int(w), height=int(h), fps=float(vr.get_avg_fps()), frame_count=len(vr))
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError types
        errors.append(f"decord: {exc}".splitlines()[0])
    try:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.base_rate or Fraction(0)
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height,
                             fps=float(rate), frame_count=int(frames))
    except Exception as exc:
        errors.append(f"av: {exc}".splitlines()[0])
    raise UserError(f"{path}: cannot read video ({'; '.join(errors)})")
