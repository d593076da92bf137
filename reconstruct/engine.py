"""Where the pipeline's tasks run: in this process (serial twin) or on Dask distributed.

Both engines expose the same two calls, :meth:`map` (apply a picklable module-level function to
a list of small task descriptions, results in input order) and :meth:`close`. Tasks open their
inputs and write their outputs themselves, so only descriptions and small summaries travel.

- :class:`SerialEngine` -- ``workers=0``: a plain loop, no Dask import at all (debugging,
  profiling, the reference the parallel path is tested against bit for bit).
- :class:`DaskEngine` -- a ``LocalCluster`` of N single-threaded worker processes on loopback,
  or a ``Client`` connected to an existing scheduler. A worker that dies mid-task has its tasks
  re-run elsewhere by the scheduler; tasks are idempotent (same block -> same bytes).

Models are cached per process with :func:`cached` (a module-level dict, so each worker process
loads a checkpoint once, not once per task).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from dendrosam.errors import SchedulerError

__all__ = ["Engine", "SerialEngine", "DaskEngine", "make_engine", "cached", "worker_device"]

log = logging.getLogger(__name__)

_CACHE: dict[Hashable, Any] = {}


def cached(key: Hashable, factory: Callable[[], Any]) -> Any:
    """Return the object cached under ``key`` in this process, building it once with ``factory``."""
    if key not in _CACHE:
        _CACHE[key] = factory()
    return _CACHE[key]


def worker_device(preference: str | None) -> str | None:
    """Pin a Dask worker to one GPU when several are visible and ``preference`` is plain ``cuda``.

    Worker *i* (its position in the cluster, from its name) gets ``cuda:{i % n_gpus}``; anything
    else (explicit ``cuda:K``, ``cpu``, None, a single GPU, the serial engine) is returned unchanged.
    """
    if preference != "cuda":
        return preference
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return preference
    import torch

    n = torch.cuda.device_count()
    if n < 2:
        return preference
    index = name if isinstance(name, int) else sum(map(ord, str(name)))
    return f"cuda:{index % n}"


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="task", disable=not enabled, leave=False)


class Engine(Protocol):
    """What the pipeline needs from an engine."""

    n_workers: int

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str = "") -> list[Any]:
        """Apply ``fn`` to every item; results in the order of ``items``."""

    def close(self) -> None:
        """Release workers/connections."""


class SerialEngine:
    """Run every task in this process, in order (no Dask)."""

    n_workers = 1

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str = "") -> list[Any]:
        """Apply ``fn`` to each item in turn."""
        out = []
        with _progress(len(items), desc, self.progress) as bar:
            for item in items:
                out.append(fn(item))
                bar.update(1)
        return out

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskEngine:
    """Run tasks on Dask distributed.

    Parameters
    ----------
    workers : int
        Size of the local cluster to start (ignored when ``scheduler`` is given).
    scheduler : str or None
        Address of an existing scheduler (``tcp://host:port``).
    connect_timeout_s : float
        Give up connecting after this many seconds.
    progress : bool
        Show a tqdm bar per :meth:`map`.
    preload : sequence of str
        Modules every worker imports up front (so first tasks do not pay the import time).

    Raises
    ------
    SchedulerError
        The scheduler is unreachable / the address is malformed, or the cluster cannot start.
    """

    def __init__(
        self,
        workers: int = 2,
        scheduler: str | None = None,
        connect_timeout_s: float = 5.0,
        progress: bool = True,
        preload: Sequence[str] = (),
    ) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise SchedulerError(
                f"--workers/--scheduler need dask.distributed ({exc.name} is not installed: "
                "pip install 'dendrosam[distributed]')"
            ) from None
        self.progress = progress
        self._cluster = None
        timeout = f"{connect_timeout_s}s"
        with dask.config.set({"distributed.comm.timeouts.connect": timeout}):
            if scheduler:
                if "://" not in scheduler:
                    raise SchedulerError(f"--scheduler {scheduler!r}: expected an address like tcp://host:8786")
                try:
                    self.client = Client(scheduler, timeout=timeout, set_as_default=False)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise SchedulerError(
                        f"--scheduler {scheduler}: cannot reach the Dask scheduler within "
                        f"{connect_timeout_s:g} s ({type(exc).__name__}: {exc})"
                    ) from None
            else:
                try:
                    self._cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                    )
                    self.client = Client(self._cluster, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise SchedulerError(f"--workers {workers}: cannot start a local Dask cluster ({exc})") from None
        self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)
        if preload:
            self.client.run(_import_all, tuple(preload))
        log.info("dask engine: %s (%d workers)", self.client.scheduler.address, self.n_workers)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str = "") -> list[Any]:
        """Submit one task per item; gather results in input order (tasks of dead workers re-run)."""
        from distributed import as_completed

        if not items:
            return []
        futures = self.client.map(fn, list(items), pure=False)
        with _progress(len(futures), desc, self.progress) as bar:
            for _ in as_completed(futures, loop=self.client.loop):
                bar.update(1)
        return self.client.gather(futures)

    def close(self) -> None:
        """Close the client (and the local cluster if this engine started it)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_all(modules: tuple[str, ...]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(name)


def make_engine(
    workers: int = 0,
    scheduler: str | None = None,
    connect_timeout_s: float = 5.0,
    progress: bool = True,
    preload: Sequence[str] = (),
) -> SerialEngine | DaskEngine:
    """``workers=0`` and no scheduler -> :class:`SerialEngine`; otherwise a :class:`DaskEngine`."""
    if workers < 0:
        raise SchedulerError(f"--workers must be >= 0, got {workers}")
    if not workers and not scheduler:
        return SerialEngine(progress=progress)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return DaskEngine(workers=workers or 1, scheduler=scheduler, connect_timeout_s=connect_timeout_s,
                      progress=progress, preload=preload)
