"""converters/media_files.py: a clip's identity (the split key), the header read that refuses what is not a video, and
the missing-media listing — on real mp4 / mkv files written here."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from common.errors import UserError
from converters import media_files
from converters.media_files import file_identity, missing_media_error, remove_missing_media_listing
from tests.support.media import frame_array, write_mp4


def _audio_only_mp4(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _video(path: Path, fmt: str | None = None, options: dict | None = None, noise: bool = False) -> Path:
    """A 4-frame 64x48 H.264 clip; `noise`: 8 frames of 160x120 noise, too large for the first 64 KiB."""
    width, height, frames = (160, 120, 8) if noise else (64, 48, 4)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            pixels = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise
                      else frame_array(5, t, width, height))
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _bmff(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return media_files._bmff_has_video(fd, os.read(fd, media_files.IDENTITY_BYTES), path.stat().st_size)
    finally:
        os.close(fd)


def test_the_box_walk_finds_the_video_track_wherever_the_movie_box_is(tmp_path):
    at_end = write_mp4(tmp_path / "at_end.mp4", 1)  # PyAV's mp4: media data first, the movie box after it
    faststart = _video(tmp_path / "faststart.mp4", options={"movflags": "faststart"})
    far = _video(tmp_path / "far.mp4", noise=True)  # its movie box lies past the first 64 KiB
    assert far.read_bytes().find(b"moov") > media_files.IDENTITY_BYTES
    assert _bmff(at_end) and _bmff(faststart) and _bmff(far)
    assert not _bmff(_audio_only_mp4(tmp_path / "audio.mp4"))
    assert not _bmff(_video(tmp_path / "clip.mkv", "matroska"))  # not ISO BMFF: PyAV decides


def test_identity_and_header_read(tmp_path, monkeypatch):
    clip = write_mp4(tmp_path / "a.mp4", 1)
    other = write_mp4(tmp_path / "b.mp4", 2)
    shutil.copy(clip, tmp_path / "copy.mp4")
    os.symlink(clip, tmp_path / "link.mp4")
    key = file_identity(str(clip), "row 1")
    assert file_identity(str(tmp_path / "copy.mp4"), "row 2") == key  # identical bytes under another name
    assert file_identity(str(tmp_path / "link.mp4"), "row 3") == key  # one file by two paths
    assert file_identity(str(other), "row 4") != key
    # the mp4 is read from its box headers: PyAV is not asked
    monkeypatch.setattr(media_files, "_pyav_video_problem", lambda path: pytest.fail("PyAV asked"))
    file_identity(str(clip), "row 1")
    monkeypatch.undo()
    assert file_identity(str(_video(tmp_path / "clip.mkv", "matroska")), "row 5")  # PyAV finds the stream


@pytest.mark.parametrize("case, pattern", [
    ("empty", r"row 7: .*empty\.mp4 is an empty file, not a video"),
    ("text", r"row 7: .*text\.mp4 is not a readable video \(InvalidDataError: "),
    ("audio", r"row 7: .*audio\.mp4 is not a readable video \(no video stream\)"),
    ("truncated", r"row 7: .*truncated\.mp4 is not a readable video"),
])
def test_what_is_not_a_video_is_refused(tmp_path, case, pattern):
    path = tmp_path / f"{case}.mp4"
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("not a video\n")
    elif case == "audio":
        _audio_only_mp4(path)
    else:
        data = write_mp4(tmp_path / "whole.mp4", 3).read_bytes()
        path.write_bytes(data[:40])  # the file type box and a little more: the movie box is gone
    with pytest.raises(UserError, match=pattern):
        file_identity(str(path), "row 7")
    assert file_identity(str(path), "row 7", video=False)  # identity alone reads no header


def _missing(n: int) -> list[dict]:
    return [{"video_id": f"v{i:02d}.mp4", "where": f"export.ndjson:{i + 1}", "looked_for": [f"v{i:02d}.mp4", "x"]}
            for i in range(n)]


def test_missing_media_listed_inline_or_beside_the_output(tmp_path):
    out = tmp_path / "data" / "deeptrace"
    few = str(missing_media_error(_missing(10), [tmp_path / "videos"], out, "tool.py"))
    assert few.startswith(f"10 video file(s) not found under {tmp_path / 'videos'}: v00.mp4 (export.ndjson:1), ")
    assert all(f"v{i:02d}.mp4 (export.ndjson:{i + 1})" in few for i in range(10))
    assert "\n" not in few and not (tmp_path / "data").exists()
    many = str(missing_media_error(_missing(12), [tmp_path / "videos"], out, "tool.py"))
    listing = tmp_path / "data" / "deeptrace.missing-media.tsv"
    assert many.endswith(f"… — all 12 listed in {listing} (set --media-root, or pass --skip-missing to skip them)")
    lines = listing.read_text().splitlines()
    assert lines[0].startswith("# written by tool.py") and lines[1] == "video_id\twhere\tnames looked for"
    assert lines[2:] == [f"v{i:02d}.mp4\texport.ndjson:{i + 1}\tv{i:02d}.mp4, x" for i in range(12)]
    remove_missing_media_listing(out)  # what a later run that found every clip does
    assert not listing.exists()
    listing.write_text("my own notes\n")  # a file of the user's under that name stays
    remove_missing_media_listing(out)
    assert listing.read_text() == "my own notes\n"
