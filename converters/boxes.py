"""Boxes in source-video pixels, `(x0, y0, x1, y1)` floats, and the JSON numbers they are read from.

A box given as `{top, left, height, width}` (LabelBox's shape, also the released DeeptraceReward data's) becomes
`(left, top, left + width, top + height)`; a zero-area box is a `UserError`, one partly outside the frame is clipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from common.errors import UserError

Box = tuple[float, float, float, float]
NUMBER_TYPES = (int, float)


def number(value: Any, ctx: str, name: str, *, positive: bool = False, allow_none: bool = False) -> float | None:
    """A finite JSON number (not a bool); `UserError` naming `ctx` and `name` otherwise."""
    if type(value) in NUMBER_TYPES and math.isfinite(value):  # the common case, fast
        if positive and value <= 0:
            raise UserError(f"{ctx}: {name} is {value!r}; it must be > 0")
        return float(value)
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise UserError(f"{ctx}: {name} is {value!r}, not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{ctx}: {name} is {value!r}, not a number")
    if positive and value <= 0:
        raise UserError(f"{ctx}: {name} is {value!r}; it must be > 0")
    return float(value)


def ltwh_box(bbox: Any, ctx: str | Callable[[], str]) -> Box:
    """Labelbox `{top, left, height, width}` (pixels) → `(x0, y0, x1, y1)`; a zero-area box is a `UserError`.

    `ctx` names the box in error messages; it may be a callable, so that hot loops only build it on error.
    """
    try:  # the common cases, fast: all floats, or ints and floats
        left, top, width, height = bbox["left"], bbox["top"], bbox["width"], bbox["height"]
        if (type(left) is float and type(top) is float and type(width) is float and type(height) is float
                and width > 0 and height > 0 and math.isfinite(left + top + width + height)):
            return (left, top, left + width, top + height)
        if (type(left) in NUMBER_TYPES and type(top) in NUMBER_TYPES and type(width) in NUMBER_TYPES
                and type(height) in NUMBER_TYPES and width > 0 and height > 0
                and math.isfinite(left + top + width + height)):
            return (float(left), float(top), float(left + width), float(top + height))
    except (KeyError, TypeError):
        pass
    ctx = ctx() if callable(ctx) else ctx
    if not isinstance(bbox, dict):
        raise UserError(f"{ctx}: bounding box is {type(bbox).__name__}, expected an object with top/left/height/width")
    vals = {}
    for key in ("left", "top", "width", "height"):
        if key not in bbox:
            raise UserError(f"{ctx}: bounding box has no '{key}'")
        vals[key] = number(bbox[key], ctx, f"bounding box {key}")
    if vals["width"] <= 0 or vals["height"] <= 0:
        raise UserError(f"{ctx}: zero-area bounding box (width {vals['width']:g}, height {vals['height']:g})")
    return (vals["left"], vals["top"], vals["left"] + vals["width"], vals["top"] + vals["height"])


def clip_box(box: Box, width: float, height: float) -> tuple[Box, bool]:
    """Clip to the frame; returns the box and whether anything changed."""
    width, height = float(width), float(height)
    x0, y0, x1, y1 = box
    if 0.0 <= x0 <= width and 0.0 <= x1 <= width and 0.0 <= y0 <= height and 0.0 <= y1 <= height:
        return (x0, y0, x1, y1), False  # inside: what the min/max below would give
    clipped = (min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
               min(max(box[2], 0.0), width), min(max(box[3], 0.0), height))
    return clipped, clipped != tuple(box)
