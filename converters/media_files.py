"""The video files a dataset points at: found under media roots, checked and identified, their geometry read or
probed, real clips scanned.

A file's *identity* is its size and a hash of its first 64 KiB (`file_identity`): identical bytes under two names, or
one file reached by two paths (links, two roots), have one identity. The dataset writer splits by it, so that a clip
uploaded twice never sits in two splits.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from common.errors import UserError
from common.jsonl import atomic_open
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


IDENTITY_BYTES = 1 << 16  # a file's identity: its size and a hash of this many first bytes (converters/README.md)
MISSING_LISTED_INLINE = 10  # more missing clips than this are listed in a file beside the output, not in the message


def file_identity(path: str, ctx: str, *, video: bool = True) -> int:
    """The file's identity — Python's 64-bit hash of its size and first 64 KiB, the same within a run, which is all
    the split needs (it is never written) — after a header read: with `video`, an empty file, or one in which
    neither an ISO BMFF (mp4, mov, m4v) box walk nor PyAV finds a video stream, is a `UserError` naming `ctx`
    (a header read, not a decode)."""
    try:
        fd = os.open(path, os.O_RDONLY)  # not open(): a buffered file object costs more than the read
        try:
            head = os.read(fd, IDENTITY_BYTES)
            size = len(head) if len(head) < IDENTITY_BYTES else os.fstat(fd).st_size
            if video:
                if size == 0:
                    raise UserError(f"{ctx}: {path} is an empty file, not a video")
                if not _bmff_has_video(fd, head, size):
                    problem = _pyav_video_problem(path)
                    if problem:
                        raise UserError(f"{ctx}: {path} is not a readable video ({problem})")
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"{ctx}: {path}: cannot read: {exc.strerror or exc}") from None
    return hash((size, head))


_MAX_MOOV = 64 << 20  # a movie box larger than this is left to PyAV
_BOX, _LARGE = struct.Struct(">I4s"), struct.Struct(">Q")  # a box header: size and type; a 64-bit size


def _bmff_has_video(fd: int, head: bytes, size: int) -> bool:
    """Whether the file is ISO BMFF whose movie box (`moov`, found by walking the top-level box headers; after the
    media data it is read at its offset) holds a handler box (`hdlr`) of type 'vide': a video track. False also
    means "cannot tell": PyAV decides then."""
    pos = 0
    while pos + 8 <= size:
        if pos + 16 <= len(head):
            header, at = head, pos
        else:
            header, at = os.pread(fd, 16, pos), 0
            if len(header) < 8:
                return False
        box, kind = _BOX.unpack_from(header, at)  # 32-bit size, type
        skip = 8
        if box == 1:
            if len(header) < at + 16:
                return False
            box, skip = _LARGE.unpack_from(header, at + 8)[0], 16
        elif box == 0:
            box = size - pos
        if box < skip:
            return False
        if kind == b"moov":
            if box > _MAX_MOOV:
                return False
            moov = head[pos + skip:pos + box] if pos + box <= len(head) else os.pread(fd, box - skip, pos + skip)
            # a handler box: size, "hdlr", version and flags, pre_defined, then the handler type ("vide", "soun", …)
            i = moov.find(b"hdlr")
            while i >= 4:
                if moov[i + 12:i + 16] == b"vide":
                    return True
                i = moov.find(b"hdlr", i + 4)
            return False
        pos += box
    return False


def _pyav_video_problem(path: str) -> str | None:
    """None when PyAV opens the file (header and stream parameters only) and finds a video stream with a size."""
    try:
        import av

        with av.open(path) as container:
            streams = container.streams.video
            if not streams:
                return "no video stream"
            ctx = streams[0].codec_context
            if ctx is None or not ctx.width or not ctx.height:
                return "its video stream has no frame size"
    except Exception as exc:  # noqa: BLE001 - PyAV raises its own error types for every kind of bad file
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


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
        path = os.path.abspath(p)
        videos.append(Video(video_id=vid, label="real", path=path, width=info.width, height=info.height,
                            fps=info.fps, duration=info.duration, file_key=file_identity(path, path, video=False)))
    return videos


def missing_media_error(missing: list[dict], roots: Sequence[Path], out: Path, tool: str) -> UserError:
    """One line naming every missing clip; past `MISSING_LISTED_INLINE`, they are listed in `OUT.missing-media.tsv`
    beside the output folder (video id, where, names looked for), which the message names."""
    where = ", ".join(str(r) for r in roots)
    hint = "(set --media-root, or pass --skip-missing to skip them)"
    if len(missing) <= MISSING_LISTED_INLINE:
        shown = ", ".join(f"{m['video_id']} ({m['where']})" for m in missing)
        return UserError(f"{len(missing)} video file(s) not found under {where}: {shown} {hint}")
    listing = missing_media_listing(out)
    with atomic_open(listing) as fh:
        fh.write(f"{MISSING_HEADER} {tool}: video files not found under {where}\n")
        fh.write("video_id\twhere\tnames looked for\n")
        for m in missing:
            fh.write(f"{m['video_id']}\t{m['where']}\t{', '.join(m['looked_for'])}\n")
    shown = ", ".join(f"{m['video_id']} ({m['where']})" for m in missing[:3])
    return UserError(f"{len(missing)} video file(s) not found under {where}: {shown}, … — all {len(missing)} "
                     f"listed in {listing} {hint}")


MISSING_HEADER = "# written by"


def missing_media_listing(out: Path) -> Path:
    return Path(out).parent / f"{Path(out).name}.missing-media.tsv"


def remove_missing_media_listing(out: Path) -> None:
    """After a run that found every clip: remove the listing an earlier failed run wrote (only if it is ours)."""
    listing = missing_media_listing(out)
    try:
        with listing.open(encoding="utf-8") as fh:
            ours = fh.readline().startswith(MISSING_HEADER)
    except (OSError, UnicodeDecodeError):
        return
    if ours:
        listing.unlink(missing_ok=True)
