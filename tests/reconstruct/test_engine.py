"""Engines: serial twin vs Dask give the same results; unreachable schedulers fail fast."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dendrosam.errors import SchedulerError
from dendrosam.reconstruct.engine import SerialEngine, cached, make_engine, worker_device


def _square(x: int) -> int:
    return x * x


def _load_count(key: str) -> int:
    """Return how many times this process 'loaded' the model for key (1 when cached)."""
    import dendrosam.reconstruct.engine as eng

    counter = eng._CACHE.setdefault(("loads", key), [0])
    cached(("model", key), lambda: counter.__setitem__(0, counter[0] + 1) or object())
    return counter[0]


def test_serial_engine_keeps_order():
    with make_engine(0, progress=False) as e:
        assert isinstance(e, SerialEngine)
        assert e.map(_square, [3, 1, 2]) == [9, 1, 4]
        assert e.map(_square, []) == []


def test_serial_mode_never_imports_dask():
    code = (
        "import sys\n"
        "from dendrosam.reconstruct.engine import make_engine\n"
        "e = make_engine(0, progress=False)\n"
        "assert e.map(abs, [-1, 2]) == [1, 2]\n"
        "print(any(m == 'dask' or m.startswith(('dask.', 'distributed')) for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cache_builds_once_per_process():
    assert [_load_count("a") for _ in range(3)] == [1, 1, 1]
    assert worker_device("cpu") == "cpu" and worker_device(None) is None


def test_dask_engine_matches_serial_and_caches_per_worker():
    items = list(range(20))
    with make_engine(2, progress=False) as e:
        assert e.n_workers == 2
        assert e.map(_square, items) == SerialEngine(progress=False).map(_square, items)
        # every task 'loads' a model; each worker process loaded it exactly once
        assert set(e.map(_load_count, ["m"] * 10)) == {1}


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "127.0.0.1:9"])
def test_unreachable_scheduler_fails_fast(address):
    t0 = time.perf_counter()
    with pytest.raises(SchedulerError, match="scheduler"):
        make_engine(scheduler=address, connect_timeout_s=1.0, progress=False)
    assert time.perf_counter() - t0 < 8.0


def test_negative_workers():
    with pytest.raises(SchedulerError, match="--workers must be >= 0"):
        make_engine(-1)
