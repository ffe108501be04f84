"""Ordered work on forked worker processes, for CPU-bound loops over chunks of a large input."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["BrokenProcessPool", "can_fork", "forked_pool", "ordered_map", "usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a Slurm allocation), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers


def forked_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` forked processes (use it with `with`).

    Forked, not spawned: the function a worker runs and the module state it reads (set before the pool starts) reach
    it without pickling, and `str` hashes agree with the parent's. A worker that dies (killed for memory, say) makes
    the waiting call raise `BrokenProcessPool` instead of hanging.
    """
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_ignore_sigint)


def ordered_map(pool: ProcessPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *, in_flight: int) -> Iterator[R]:
    """`map(fn, items)` on `pool`, results in the order of `items`, with at most `in_flight` items submitted and not
    yet consumed (so a slow consumer holds a bounded number of results). The first items are submitted at once (the
    workers start then, before any thread the caller starts next); closing the iterator early cancels those not
    started."""
    items = iter(items)
    pending: deque[Future] = deque(pool.submit(fn, item) for item in itertools.islice(items, in_flight))
    return _results(pool, fn, items, pending)


def _results(pool: ProcessPoolExecutor, fn: Callable[[T], R], items: Iterator[T],
             pending: deque[Future]) -> Iterator[R]:
    try:
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(items, 1):
                pending.append(pool.submit(fn, item))
            yield result
    finally:
        for future in pending:
            future.cancel()
