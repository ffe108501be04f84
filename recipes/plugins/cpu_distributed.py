"""ms-swift plugin for data-parallel `swift infer` on CPU-only hosts (recipes/infer.sh adds it when NPROC_PER_NODE > 1
and no GPU is visible; GPUs never need it).

ms-swift gathers the processes' results with accelerate's `gather_object`, which asks accelerate's PartialState
whether the run is distributed. On a host without CUDA, PartialState() says "not distributed" unless it was first
created with cpu=True, so the gather returns rank 0's shard alone and the other ranks' results are lost (measured:
4 of 7 result lines with 2 processes). Creating the state with cpu=True here, in every worker, before inference,
makes it MULTI_CPU over gloo: the gather then returns every rank's shard in rank order (= input order).
"""

from __future__ import annotations

import os

import torch

if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and not torch.cuda.is_available():
    from accelerate import PartialState

    PartialState(cpu=True)
