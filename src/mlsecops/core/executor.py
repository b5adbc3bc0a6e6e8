"""Executors: map a function over work items, in order, with progress, on a chosen engine.

One interface for every fan-out in the package (privacy reference models, sharded evaluations,
cross-validation folds, scans of many artifacts), so a report is the same whichever engine ran it::

    ex = get_executor("process", workers=4, progress=hook)
    models = ex.map(train_one, shards, desc="reference models", seed=7)

Engines, by name (``ENGINES``; another module adds one with ``register_engine``, e.g. Ray):

- ``inline``: in this process, one item after the other (debugging, tiny jobs, nested calls);
- ``process``: a local pool of worker processes (the default);
- ``ray``: tasks on a Ray cluster, local or remote (``address``; the ``ray`` extra, imported when the
  first job runs; ``mlsecops.core._ray``).

Contract, the same on every engine:

- results come back in the order of ``items``;
- ``fn`` is a picklable top-level function; with ``seed`` given it is called as ``fn(item, item_seed)``
  where ``item_seed`` is derived from ``seed`` and the item's position only (``item_seed``), never from
  the worker that runs it, so the same seed gives the same results on every engine and worker count;
- an exception raised by ``fn`` propagates unchanged (the first to be seen; the rest is cancelled);
- a worker that dies (killed, out of memory, a crash in native code) costs its items one retry on a
  fresh pool; a second death is an ``ExecutorError`` naming the job and how many items were lost.

This module imports nothing heavy: the process pool is imported when a pool is first needed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from mlsecops.core.errors import ConfigError, MlsecopsError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "ProcessExecutor",
    "ProgressFn",
    "get_executor",
    "item_seed",
    "register_engine",
]

ProgressFn = Callable[[str, int, int], None]
"""Progress callback ``(step, done, total)``, as every long library call takes it."""

DEFAULT_ENGINE = "process"
"""Engine used when none is named."""
SEED_BITS = 32
"""Bits of a derived per-item seed: every library (numpy, scikit-learn, torch) accepts it."""
MAX_WORKERS = 256
"""Most worker processes one executor starts: bounds what a typo in ``--workers`` can fork."""
WORKER_RETRIES = 1
"""Times the items of a dead worker are run again on a fresh pool before the job fails."""
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 in each worker unless already set: N workers each starting N BLAS threads oversubscribe."""


class ExecutorError(MlsecopsError):
    """Work could not be completed by the engine (a worker died twice, the engine is unavailable)."""


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` of a job seeded with ``seed``: a hash of both, ``SEED_BITS`` wide.

    Independent of the engine, the worker and the number of workers.
    """
    digest = hashlib.sha256(f"mlsecops-executor:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


@runtime_checkable
class Executor(Protocol):
    """Maps a function over items on some engine; see the module docstring for the contract."""

    name: str

    @property
    def workers(self) -> int:
        """Items run at once."""
        ...

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *,
        desc: str | None = None,
        seed: int | None = None,
    ) -> list[Any]:
        """``[fn(item) ...]`` (or ``fn(item, item_seed(seed, i))`` with ``seed``), in item order."""
        ...


def _calls(items: Sequence[Any], seed: int | None) -> list[tuple[Any, ...]]:
    if seed is None:
        return [(item,) for item in items]
    return [(item, item_seed(seed, i)) for i, item in enumerate(items)]


class _Engine:
    """What the engines share: the calls to make, the progress label, and progress reports."""

    progress: ProgressFn | None

    def _start(
        self, fn: Callable[..., Any], items: Sequence[Any], desc: str | None, seed: int | None
    ) -> tuple[list[tuple[Any, ...]], str]:
        """The calls ``map`` makes (with per-item seeds when ``seed`` is given) and its progress label."""
        return _calls(list(items), seed), str(desc or getattr(fn, "__name__", "work"))

    def _report(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)


class InlineExecutor(_Engine):
    """Runs every item in this process, in order (``inline``)."""

    name = "inline"

    def __init__(self, *, workers: int | None = None, progress: ProgressFn | None = None) -> None:
        self.workers = 1
        self.progress = progress

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *,
        desc: str | None = None,
        seed: int | None = None,
    ) -> list[Any]:
        """Call ``fn`` on each item in turn (see ``Executor.map``)."""
        calls, label = self._start(fn, items, desc, seed)
        out: list[Any] = []
        for args in calls:
            self._report(label, len(out), len(calls))
            out.append(fn(*args))
        self._report(label, len(out), len(calls))
        return out


def _limit_threads() -> None:
    """Worker initialiser: one BLAS/OpenMP thread per worker unless the user chose otherwise."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")


class ProcessExecutor(_Engine):
    """A local pool of worker processes (``process``, the default engine).

    Args:
        workers: processes to start (default: the CPU count), capped by the number of items.
        progress: called as ``(desc, done, total)`` as items finish.
        context: multiprocessing start method; ``spawn`` by default: a forked child of a process that
            runs threads (torch, BLAS) can deadlock, and a spawned one starts from a clean interpreter.
    """

    name = "process"

    def __init__(
        self, *, workers: int | None = None, progress: ProgressFn | None = None, context: str = "spawn"
    ) -> None:
        count = workers if workers is not None else (os.cpu_count() or 1)
        if not 1 <= count <= MAX_WORKERS:
            raise ConfigError(f"workers must be in [1, {MAX_WORKERS}]; got {count}")
        self.workers = count
        self.progress = progress
        self.context = context

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *,
        desc: str | None = None,
        seed: int | None = None,
    ) -> list[Any]:
        """Run the items on the pool (see ``Executor.map``).

        Raises:
            ExecutorError: a worker died on the same items twice.
        """
        calls, label = self._start(fn, items, desc, seed)
        results: dict[int, Any] = {}
        pending = list(range(len(calls)))
        self._report(label, 0, len(calls))
        for attempt in range(WORKER_RETRIES + 1):
            if not pending:
                break
            pending = self._round(fn, calls, pending, results, label)
            if pending and attempt == WORKER_RETRIES:
                raise ExecutorError(
                    f"{label}: a worker process died twice running the same work ({len(pending)} of "
                    f"{len(calls)} items not done): out of memory, a crash in native code, or a script that "
                    "starts work without an `if __name__ == '__main__':` guard"
                )
        return [results[i] for i in range(len(calls))]

    def _round(
        self,
        fn: Callable[..., Any],
        calls: list[tuple[Any, ...]],
        pending: list[int],
        results: dict[int, Any],
        label: str,
    ) -> list[int]:
        """Run ``pending`` on a fresh pool; return the indices lost to a dead worker."""
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        ctx = multiprocessing.get_context(self.context)
        size = min(self.workers, len(pending))
        with ProcessPoolExecutor(max_workers=size, mp_context=ctx, initializer=_limit_threads) as pool:
            futures = {pool.submit(fn, *calls[i]): i for i in pending}
            not_done = set(futures)
            while not_done:
                done, not_done = wait(not_done, return_when=FIRST_EXCEPTION)
                for fut in done:
                    err = fut.exception()
                    if isinstance(err, BrokenProcessPool):
                        continue
                    if err is not None:
                        for other in not_done:
                            other.cancel()
                        raise err
                    results[futures[fut]] = fut.result()
                self._report(label, len(results), len(calls))
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    break
        lost = [i for i in pending if i not in results]
        return sorted(lost)


def _ray_engine(**options: Any) -> Executor:
    from mlsecops.core._ray import RayExecutor

    return RayExecutor(**options)


ENGINES: dict[str, Callable[..., Executor]] = {
    "inline": InlineExecutor,
    "process": ProcessExecutor,
    "ray": _ray_engine,
}
"""Engine factories by name, each called as ``factory(workers=..., progress=...)``."""


def register_engine(name: str, factory: Callable[..., Executor]) -> None:
    """Make an engine available to ``get_executor`` under ``name`` (e.g. ``ray``, from its own module).

    The factory takes the keyword arguments ``workers`` and ``progress`` (plus any of its own).
    """
    ENGINES[name] = factory


def get_executor(
    name: str = DEFAULT_ENGINE,
    *,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    address: str | None = None,
) -> Executor:
    """The executor of engine ``name``.

    Args:
        name: ``inline``, ``process``, ``ray`` or a registered engine.
        workers: parallelism (engine default when None: the CPU count for ``process``).
        progress: called as ``(desc, done, total)`` while a ``map`` runs.
        address: the cluster to run on (``ray`` only: ``HOST:PORT`` of its head, or ``auto``).

    Raises:
        ConfigError: an unknown engine, a bad worker count, or an address for a local engine.
    """
    factory = ENGINES.get(name)
    if factory is None:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown executor {name!r}; choose one of: {known}")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be in [1, {MAX_WORKERS}]; got {workers}")
    if address is not None:
        if name in ("inline", "process"):
            raise ConfigError(f"an address is for a cluster engine (ray), not {name!r}")
        return factory(workers=workers, progress=progress, address=address)
    return factory(workers=workers, progress=progress)
