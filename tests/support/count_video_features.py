"""A test-only ms-swift plugin: logs every VideoLLaMA3 video-feature computation to $COUNT_VIDEO_FEATURES_LOG.

Loaded with `--external_plugins` beside recipes/plugins/videollama3.py, it shows that video features enter both the
rollouts (no gradient) and the GRPO loss forward (with gradient). Each line: `grad=True|False n=<feature rows>`.
"""

from __future__ import annotations

import functools
import os

import torch
from transformers.models.video_llama_3 import modeling_video_llama_3 as vl3

_original = vl3.VideoLlama3Model.get_video_features


@functools.wraps(_original)  # keeps the signature: transformers' generate inspects it
def _counted(self, *args, **kwargs):
    out = _original(self, *args, **kwargs)
    with open(os.environ["COUNT_VIDEO_FEATURES_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"grad={torch.is_grad_enabled()} n={sum(x.shape[0] for x in out.pooler_output)}\n")
    return out


vl3.VideoLlama3Model.get_video_features = _counted
