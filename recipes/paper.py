"""The paper's numbers the recipes should reproduce: DeeptraceReward Table 2 (test set, 0-100 scale).

Keys are eval/score.py's metric names; rows are keyed by ms-swift model type, then supervision variant.
"""

from __future__ import annotations

METRICS = ("overall", "accuracy", "fake_accuracy", "real_accuracy", "explanation", "bbox_iou", "bbox_distance",
           "time_distance")
HEADERS = ("Overall ↑", "Acc. ↑", "Fake Acc. ↑", "Real Acc. ↑", "Explan. ↑", "BBox IoU ↑", "BBox Dist. ↓",
           "Time Dist. ↓")
VARIANT_LABELS = {"full": "full supervision", "no_time": "w/o time", "no_explanation": "w/o explanation",
                  "no_time_no_explanation": "w/o time & w/o explanation"}
MODEL_LABELS = {"qwen2_5_vl": "Qwen2.5-VL-7B", "videollama3": "VideoLLaMA3-7B"}


def _row(*values: float) -> dict[str, float]:
    return dict(zip(METRICS, values, strict=True))


TABLE2 = {
    "qwen2_5_vl": {
        "full": _row(38.4, 74.7, 55.7, 100.0, 33.3, 1.7, 63.0, 56.2),
        "no_time": _row(29.6, 79.8, 64.6, 100.0, 37.2, 1.2, 57.7, 100.0),
        "no_explanation": _row(40.0, 91.3, 85.0, 99.7, 0.0, 1.8, 46.0, 33.3),
        "no_time_no_explanation": _row(18.3, 72.3, 51.4, 100.0, 0.0, 1.1, 66.8, 100.0),
    },
    "videollama3": {
        "full": _row(70.2, 99.4, 99.3, 99.4, 70.6, 32.6, 13.6, 21.9),
        "no_time": _row(50.8, 99.1, 98.9, 99.4, 71.6, 32.4, 14.0, 100.0),
        "no_explanation": _row(52.4, 99.2, 99.6, 98.8, 0.0, 32.0, 13.5, 21.6),
        "no_time_no_explanation": _row(32.8, 99.6, 99.6, 99.7, 0.0, 31.5, 13.7, 100.0),
    },
}
