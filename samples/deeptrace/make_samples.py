#!/usr/bin/env python
"""Regenerate the sample clips of samples/deeptrace/ (tiny real H.264 mp4s, ~2-3 KB each) reproducibly.

    python samples/deeptrace/make_samples.py          # rewrites videos/*.mp4 and real/*.mp4
    python samples/deeptrace/make_samples.py --check  # only checks that every clip exists and matches export_v2.ndjson

The clips are synthetic (tests/support/media.write_mp4: a coloured background, a moving white square); only their size,
frame rate and frame count matter to the converter. `export_v2.ndjson` is a hand-made LabelBox Export v2 file for a
fictitious project; its data rows name the fake clips by global_key and declare their media_attributes, which must
agree with FAKE below. Clip names were chosen so that the default split (8:1:1, seed 0) puts at least one fake and one
real video in both val and test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.media import probe_video  # noqa: E402
from tests.support.media import write_mp4  # noqa: E402

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 64, 48
# global_key → (clip index for write_mp4, fps, frames); the export's media_attributes say 64x48, 5 fps, 16 frames.
# 5 fps puts every trace onset ((frame - 1) / fps) on a multiple of 0.2 s, exactly representable with the one
# decimal the answers use, so that a perfect prediction scores time distance 0 on this sample.
FAKE = {
    "kling15_0001.mp4": (1, 5, 16),
    "sora_0003.mp4": (2, 5, 16),
    "pika15_0001.mp4": (3, 5, 16),
    "minimax_0004.mp4": (4, 5, 16),
    "mochi_0001.mp4": (5, 5, 16),
    "gen3_0001.mp4": (6, 5, 16),
}
# Real clips (negatives): their size, fps and duration are probed by the converter.
REAL = {
    "real_0001.mp4": (11, 4, 8),
    "real_0002.mp4": (12, 8, 16),
    "real_0018.mp4": (13, 4, 12),
    "real_0026.mp4": (14, 6, 12),
}


def check() -> list[str]:
    problems = []
    for line in (HERE / "export_v2.ndjson").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        key, media = row["data_row"]["global_key"], row["media_attributes"]
        if key not in FAKE:
            problems.append(f"{key}: in export_v2.ndjson but not in FAKE")
            continue
        _, fps, frames = FAKE[key]
        if (media["width"], media["height"], media["frame_rate"], media["frame_count"]) != (WIDTH, HEIGHT, fps, frames):
            problems.append(f"{key}: media_attributes disagree with FAKE")
    for folder, clips in (("videos", FAKE), ("real", REAL)):
        for name, (_, fps, frames) in clips.items():
            path = HERE / folder / name
            if not path.is_file():
                problems.append(f"{path}: missing")
                continue
            info = probe_video(path)
            if (info.width, info.height, round(info.fps), info.frame_count) != (WIDTH, HEIGHT, fps, frames):
                problems.append(f"{path}: is {info}, expected {WIDTH}x{HEIGHT} {fps} fps {frames} frames")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check the clips instead of writing them")
    args = parser.parse_args()
    if not args.check:
        for folder, clips in (("videos", FAKE), ("real", REAL)):
            for name, (index, fps, frames) in clips.items():
                write_mp4(HERE / folder / name, index, width=WIDTH, height=HEIGHT, fps=fps, frames=frames)
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"ok: {len(FAKE)} fake clips in {HERE / 'videos'}, {len(REAL)} real clips in {HERE / 'real'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
