"""The ``ray`` engine of ``mlsecops.core.executor``: the same ``map`` contract on a Ray cluster.

``RayExecutor(address=...)`` connects to a running cluster (``ray start --head`` on one machine,
``ray start --address HEAD:PORT`` on the others, or KubeRay), or, with no address and no
``RAY_ADDRESS`` in the environment, starts a private local Ray instance for this process. Each item is
one Ray task (one CPU), spread over the cluster's nodes (Ray's ``SPREAD`` strategy: a fan-out of
similar items should load every node, not fill the driver's first); at most ``workers`` tasks are in
flight at once (default: the cluster's CPUs), so the memory a job holds is bounded by the parallelism,
not by the number of items. The contract is the executor's: results in item order, per-item seeds
from the item's position, the first exception raised by ``fn`` propagates as itself, and a worker that
dies (killed, out of memory, a native crash) costs its task ``WORKER_RETRIES`` retries on another
worker before the job fails with an ``ExecutorError`` naming how many items were lost; nothing is
dropped silently.

Functions and items travel by pickle: ``fn`` must be importable on every node (the same mlsecops
installed there, and any module of your own on its ``PYTHONPATH`` or in a Ray ``runtime_env``).
Only ``ray`` (the ``ray`` extra) is needed, and it is imported when the first job runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from mlsecops.core.errors import ConfigError
from mlsecops.core.executor import MAX_WORKERS, WORKER_RETRIES, ExecutorError, ProgressFn, _Engine

__all__ = ["RayExecutor"]

LOCAL_NODE_IP = "127.0.0.2"
"""Address of a private local instance: a loopback address that Ray does not rewrite to the host's
network address (it replaces ``127.0.0.1`` and ``localhost``), so a local job's traffic stays on the
loopback interface."""

_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ExecutorError(
            "the ray engine needs Ray: pip install 'mlsecops[ray]' (on every node of the cluster)"
        ) from err
    return ray


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run one item on a Ray worker (with one BLAS thread, as the process pool does)."""
    for var, value in _ENV.items():
        os.environ.setdefault(var, value)
    return fn(*args)


class RayExecutor(_Engine):
    """Runs items as Ray tasks (``ray``); see the module docstring.

    Args:
        workers: tasks in flight at once (default: the cluster's CPU count).
        progress: called as ``(desc, done, total)`` in this process as tasks finish.
        address: the cluster (``HOST:PORT`` of the head's GCS, ``auto``, or ``ray://HOST:PORT``);
            default ``RAY_ADDRESS`` from the environment, else a private local instance.
    """

    name = "ray"

    def __init__(
        self, *, workers: int | None = None, progress: ProgressFn | None = None, address: str | None = None
    ) -> None:
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be in [1, {MAX_WORKERS}]; got {workers}")
        self._workers = workers
        self.progress = progress
        self.address = address if address is not None else os.environ.get("RAY_ADDRESS") or None

    @property
    def workers(self) -> int:
        """Tasks in flight at once."""
        if self._workers is not None:
            return self._workers
        ray = self._connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _connect(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            try:
                # a private instance ("local": never a stale cluster some earlier run left behind)
                local = {} if self.address else {"_node_ip_address": LOCAL_NODE_IP}
                ray.init(
                    address=self.address or "local",
                    **local,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                    configure_logging=True,
                )
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = self.address or "a local instance"
                raise ExecutorError(f"cannot start or reach the Ray cluster at {where}: {err}") from err
        return ray

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *,
        desc: str | None = None,
        seed: int | None = None,
    ) -> list[Any]:
        """Run the items as Ray tasks (see ``Executor.map``).

        Raises:
            ExecutorError: a task's worker died more than ``WORKER_RETRIES`` times, or the cluster is
                unreachable.
        """
        calls, label = self._start(fn, items, desc, seed)
        total = len(calls)
        self._report(label, 0, total)
        if not calls:
            return []
        ray = self._connect()
        exceptions = ray.exceptions
        remote = ray.remote(
            num_cpus=1, max_retries=WORKER_RETRIES, retry_exceptions=False, scheduling_strategy="SPREAD"
        )(_call)
        fn_ref = ray.put(fn)
        limit = self.workers
        results: dict[int, Any] = {}
        in_flight: dict[Any, int] = {}
        next_index = 0
        try:
            while len(results) < total:
                while next_index < total and len(in_flight) < limit:
                    in_flight[remote.remote(fn_ref, calls[next_index])] = next_index
                    next_index += 1
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    index = in_flight.pop(ref)
                    try:
                        results[index] = ray.get(ref)
                    except exceptions.RayTaskError as err:
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, BaseException):
                            raise cause from None
                        raise ExecutorError(f"{label}: item {index} failed on a Ray worker: {err}") from None
                    except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as err:
                        lost = total - len(results)
                        raise ExecutorError(
                            f"{label}: a Ray worker died {WORKER_RETRIES + 1} times running item {index} "
                            f"({lost} of {total} items not done): out of memory or a crash in native code "
                            f"({type(err).__name__})"
                        ) from None
                self._report(label, len(results), total)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
        return [results[i] for i in range(total)]
