"""The video files a dataset points at: found under media roots, their geometry read or probed, real clips scanned."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from common.errors import UserError
from common.media import probe_video
from converters.boxes import NUMBER_TYPES, number
from converters.dataset_writer import Video

VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")


def _url_name(row_data: str) -> str | None:
    parsed = urlparse(row_data)
    path = unquote(parsed.path) if parsed.scheme else row_data
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name or None


class MediaResolver:
    """Maps a video's identifiers to a local file under one of the media roots."""

    def __init__(self, roots: Sequence[Path]):
        for root in roots:
            if not Path(root).is_dir():
                raise UserError(f"{root}: --media-root directory not found")
        self.roots = [os.path.abspath(r) for r in roots]
        self._prefixes = [r if r.endswith(os.sep) else r + os.sep for r in self.roots]

    def find(self, names: Sequence[str | None], row_data: str | None = None) -> tuple[str | None, list[str]]:
        """The first of `names` (then the file named by `row_data`) found under a root; absolute, not resolved,
        normalised as `str(Path(…))` would (a str, not a Path: making one costs as much as the lookup)."""
        first = names[0] if names else None
        if isinstance(first, str) and first.strip():  # the usual hit, without the search's bookkeeping
            hit = self._lookup(first)
            if hit is not None:
                return hit, [first]
        tried: list[str] = []
        for name in self._candidates(names, row_data):
            if name in tried:
                continue
            tried.append(name)
            hit = self._lookup(name)
            if hit is not None:
                return hit, tried
        return None, tried

    @staticmethod
    def _candidates(names: Sequence[str | None], row_data: str | None) -> Iterator[str]:
        yield from (n for n in names if isinstance(n, str) and n.strip())
        if isinstance(row_data, str) and row_data:
            parsed = urlparse(row_data)
            if parsed.scheme == "file":
                yield unquote(parsed.path)
            elif not parsed.scheme or len(parsed.scheme) == 1:  # a plain path (or a Windows drive letter)
                yield row_data
            url_name = _url_name(row_data)
            if url_name:
                yield url_name

    def _lookup(self, name: str) -> str | None:
        """One stat per candidate file (not a cached directory listing: that would grow with the media folder)."""
        if os.path.isabs(name):
            return str(Path(name)) if os.path.isfile(name) else None
        flat = "/" not in name and os.sep not in name
        # os.path.splitext(name)[1] != "", spelled out: a dot after the base name's leading dots
        exts = ("",) if "." in name[name.rfind("/") + 1:].lstrip(".") else ("", *VIDEO_EXTS)
        for prefix in self._prefixes:
            for ext in exts:
                path = prefix + name + ext  # os.path.join(root, name + ext), name being relative
                if os.path.isfile(path):
                    return path if flat else os.path.abspath(path)  # both already normalised
        return None


def _attr(attrs: dict, keys: tuple[str, ...]) -> Any:
    """The first of `keys` that `attrs` gives a non-null value for."""
    for k in keys:
        value = attrs.get(k)
        if value is not None:
            return value
    return None


def media_geometry(attrs: dict, path: str | Path, ctx: str) -> tuple[int, int, float, float, bool]:
    """`(width, height, fps, duration, probed)` from export attributes, probing the file for what they lack."""
    w, h, f, c, d = (attrs.get("width"), attrs.get("height"), attrs.get("frame_rate"), attrs.get("frame_count"),
                     attrs.get("duration"))
    if (type(w) in NUMBER_TYPES and type(h) in NUMBER_TYPES and type(f) in NUMBER_TYPES
            and type(c) in NUMBER_TYPES and type(d) in NUMBER_TYPES and w > 0 and h > 0 and f > 0 and c > 0
            and d > 0 and math.isfinite(w + h + f + c + d)):  # all given, as plain numbers: what the rest would say
        return int(round(float(w))), int(round(float(h))), float(f), float(d), False
    width = number(_attr(attrs, ("width", "video_width")), ctx, "media width", positive=True, allow_none=True)
    height = number(_attr(attrs, ("height", "video_height")), ctx, "media height", positive=True, allow_none=True)
    fps = number(_attr(attrs, ("frame_rate", "frameRate", "fps", "video_frame_rate")), ctx, "frame rate",
                 positive=True, allow_none=True)
    count = number(_attr(attrs, ("frame_count", "frameCount", "video_frame_count")), ctx, "frame count",
                   positive=True, allow_none=True)
    duration = number(_attr(attrs, ("duration", "video_duration")), ctx, "duration", positive=True,
                      allow_none=True)
    if duration is None and count is not None and fps is not None:
        duration = count / fps
    probed = False
    if None in (width, height, fps, duration):
        lacking = [n for n, v in (("width", width), ("height", height), ("frame rate", fps),
                                  ("duration or frame count", duration)) if v is None]
        try:
            info = probe_video(path)
        except UserError as exc:
            raise UserError(f"{ctx}: the export gives no {', '.join(lacking)} and the video cannot be probed "
                            f"({exc})") from None
        if not 0 < info.fps < math.inf or info.width <= 0 or info.height <= 0:
            raise UserError(f"{ctx}: the export gives no {', '.join(lacking)} and {path} reports none")
        width = width or info.width
        height = height or info.height
        fps = fps or info.fps
        duration = duration or info.duration
        probed = True
    return int(round(width)), int(round(height)), float(fps), float(duration), probed


def scan_real_videos(dirs: Sequence[Path], progress: bool = True) -> list[Video]:
    """Every video file under the `--real-videos` directories, probed; id = path relative to its directory."""
    from tqdm import tqdm

    found: dict[str, Path] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise UserError(f"{d}: --real-videos directory not found")
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
        if not files:
            raise UserError(f"{d}: no video files ({', '.join(VIDEO_EXTS)}) in --real-videos directory")
        for p in files:
            vid = p.relative_to(d).as_posix()
            if vid in found:
                raise UserError(f"{p}: real video id {vid!r} also names {found[vid]}; rename one of them")
            found[vid] = p
    videos = []
    for vid, p in tqdm(found.items(), desc="probing real videos", unit="video", disable=None if progress else True):
        info = probe_video(p)
        if not 0 < info.fps < math.inf or info.width <= 0 or info.height <= 0 or info.frame_count <= 0:
            raise UserError(f"{p}: cannot read size, frame rate or frame count of this real video")
        videos.append(Video(video_id=vid, label="real", path=os.path.abspath(p), width=info.width,
                            height=info.height, fps=info.fps, duration=info.duration))
    return videos


def missing_media_error(missing: list[dict], roots: Sequence[Path]) -> UserError:
    shown = ", ".join(f"{m['video_id']} ({m['where']})" for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    where = ", ".join(str(r) for r in roots)
    return UserError(f"{len(missing)} video file(s) not found under {where}: {shown}{more} "
                     "(set --media-root, or pass --skip-missing to skip them)")
