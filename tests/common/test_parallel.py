"""common/parallel.py: results in order from real forked workers, a dead worker reported, Ctrl-C left to the parent."""

from __future__ import annotations

import os
import signal
import time

import pytest

from common.parallel import BrokenProcessPool, forked_pool, ordered_map, usable_cpus

_state = {"offset": 0}  # read by the workers: set before they fork


def _slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.05 * ((7 * x) % 3))  # later items often finish first
    return x * x + _state["offset"], os.getpid()


def _die(x: int) -> int:
    if x == 3:
        os._exit(1)  # as if killed for memory
    return x


def _sigint_handler(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_results_in_order_from_forked_workers(monkeypatch):
    monkeypatch.setitem(_state, "offset", 1000)  # module state reaches the workers without pickling
    with forked_pool(2) as pool:
        got = list(ordered_map(pool, _slow_square, range(12), in_flight=4))
    assert [v for v, _ in got] == [x * x + 1000 for x in range(12)]
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and len(pids) == 2


def test_a_dead_worker_raises_instead_of_hanging():
    with forked_pool(2) as pool:
        results = ordered_map(pool, _die, range(8), in_flight=4)
        with pytest.raises(BrokenProcessPool):
            list(results)


def test_workers_leave_ctrl_c_to_the_parent():
    with forked_pool(1) as pool:
        assert list(ordered_map(pool, _sigint_handler, [0], in_flight=1)) == [True]
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def test_usable_cpus():
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
