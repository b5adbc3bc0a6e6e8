"""The detector hook: hands every served request/response pair to the runtime detectors, off the request path.

The request path calls :meth:`DetectorHook.submit` with an :class:`~mlsecops.monitor.interface.Observation`;
``submit`` puts it on a bounded queue without waiting (a full queue drops it and counts the drop) and
returns. One background thread takes observations in arrival order, numbers them per principal and
model when the producer did not (``query_index``, 1-based), and calls every detector's ``observe`` in
turn; the alerts go to ``on_alerts`` (the alert store and playbooks). A detector that raises is logged
once per (detector, exception type), counted, and skipped for that observation: the other detectors
still see it, and it sees the next one. The design, guarantees and how to write a detector are in
``docs/runtime-hook.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from mlsecops.monitor.interface import Alert, Detector, Observation

__all__ = ["DEFAULT_QUEUE_SIZE", "MAX_TRACKED_PRINCIPALS", "DetectorHook", "Feedback"]

_log = logging.getLogger("mlsecops.runtime.hook")

DEFAULT_QUEUE_SIZE = 10_000
"""Observations waiting for the detectors (the guard policy's ``monitor.queue_size`` default)."""
MAX_TRACKED_PRINCIPALS = 100_000
"""(principal, model) pairs whose request count is kept; beyond it the least recently seen is forgotten
(its count restarts at 1), so a flood of identities cannot grow memory without bound."""
STOP_TIMEOUT_S = 30.0
"""How long ``stop(drain=True)`` waits for the detectors to work through the queue."""


@dataclasses.dataclass(frozen=True)
class Feedback:
    """True classes of served rows, as ``POST /v2/models/{name}/feedback`` delivers them.

    Attributes:
        time: unix seconds the feedback arrived.
        principal: who sent it.
        model: the served model's name.
        version: the version that answered (the guard recomputes the outputs with it).
        labels: ``(n,)`` true class indices.
        outputs: ``(n, n_classes)`` the model's probabilities for the same rows.
        inputs: the validated rows (for detectors that read a column of them, e.g. a group).
    """

    time: float
    principal: str
    model: str
    version: str
    labels: np.ndarray
    outputs: np.ndarray
    inputs: np.ndarray | None = None


_STOP = object()
"""Queue sentinel: the consumer exits when it takes it."""


class DetectorHook:
    """Bounded, non-blocking hand-off from the request path to the detectors. ``submit`` is thread-safe.

    Args:
        detectors: The detectors, called in this order for every observation (from one thread, so they
            need not be thread-safe).
        queue_size: Most observations waiting; a full queue drops new ones (counted in ``dropped``).
        on_alerts: Called from the consumer thread with the alerts of one observation (when any).
            Slow work here delays the detectors, never the requests; an exception is logged and counted.

    Counters (for ``/metrics``; read them any time): ``submitted``, ``dropped``, ``processed``,
    ``errors`` (detector or ``on_alerts`` exceptions), ``alerts``; per detector ``detector_errors``.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_alerts: Callable[[list[Alert]], None] | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.detectors = tuple(detectors)
        self.queue_size = queue_size
        self.on_alerts = on_alerts
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._logged: set[tuple[str, str]] = set()
        self.submitted = 0
        """Observations accepted onto the queue."""
        self.dropped = 0
        """Observations refused: queue full, or the hook stopped."""
        self.processed = 0
        """Observations every detector has seen."""
        self.errors = 0
        """Exceptions raised by detectors or by ``on_alerts``."""
        self.alerts = 0
        """Alerts raised."""
        self.detector_errors: dict[str, int] = {d.name: 0 for d in self.detectors}
        """Exceptions per detector name."""

    # -- request path ---------------------------------------------------------------------------

    def submit(self, observation: Observation) -> bool:
        """Queue an observation for the detectors; never blocks.

        Returns:
            True when queued; False when dropped (queue full, or the hook stopped).
        """
        if self._closed:
            with self._lock:
                self.dropped += 1
            return False
        try:
            self._queue.put_nowait(observation)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        with self._lock:
            self.submitted += 1
        return True

    def feedback(self, item: Feedback) -> bool:
        """Queue labels for the detectors that take them (``record_feedback``); never blocks.

        They travel in the observations' queue, so a detector sees them in arrival order with the
        traffic, from the same thread. Counted with the observations (``submitted``, ``dropped``,
        ``processed``).

        Returns:
            True when queued; False when dropped (queue full, or the hook stopped).
        """
        return self.submit(item)  # type: ignore[arg-type]  # the consumer dispatches on the type

    @property
    def takes_feedback(self) -> bool:
        """Whether any detector takes labels (``record_feedback``)."""
        return any(callable(getattr(d, "record_feedback", None)) for d in self.detectors)

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> DetectorHook:
        """Start the consumer thread (once); returns self."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlsecops-detector-hook", daemon=True)
                self._thread.start()
        return self

    def stop(self, drain: bool = True, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop taking observations and stop the consumer.

        Args:
            drain: Let the detectors see what is queued first (else it is discarded and counted in
                ``dropped``).
            timeout: Longest wait for the consumer to finish.

        Returns:
            True when the consumer finished within ``timeout`` (or never ran).
        """
        with self._lock:
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            self._closed = True
        if not drain:
            discarded = 0
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                discarded += 1
            with self._lock:
                self.dropped += discarded
        with self._lock:
            if self._thread is None and drain and not self._queue.empty():  # never started: drain now
                self._thread = threading.Thread(target=self._run, name="mlsecops-detector-hook", daemon=True)
                self._thread.start()
            thread = self._thread
        if thread is None:
            return True
        end = time.monotonic() + timeout
        while thread.is_alive():  # the queue may be full: offer the sentinel until it fits or time is up
            try:
                self._queue.put(_STOP, timeout=min(0.1, max(0.0, end - time.monotonic())))
                break
            except queue.Full:
                if time.monotonic() >= end:
                    return False
        thread.join(max(0.0, end - time.monotonic()))
        return not thread.is_alive()

    def stats(self) -> dict[str, int]:
        """The counters and the current queue depth."""
        with self._lock:
            return {
                "submitted": self.submitted,
                "dropped": self.dropped,
                "processed": self.processed,
                "errors": self.errors,
                "alerts": self.alerts,
                "queued": self._queue.qsize(),
            }

    # -- consumer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if not isinstance(item, Observation | Feedback):
                self._count_error("submit", TypeError(f"not an Observation: {type(item).__name__}"))
                continue
            try:
                if isinstance(item, Feedback):
                    self._labels(item)
                else:
                    self._process(item)
            except Exception as err:  # the consumer must outlive any bug in one observation's handling
                self._count_error("hook", err)

    def _number(self, obs: Observation) -> Observation:
        """The observation with its per-(principal, model) 1-based ``query_index``."""
        key = (obs.principal, obs.model)
        counts = self._counts
        if obs.query_index > 0:
            index = max(obs.query_index, counts.get(key, 0))
        else:
            index = counts.get(key, 0) + 1
            obs = dataclasses.replace(obs, query_index=index)
        counts[key] = index
        counts.move_to_end(key)
        if len(counts) > MAX_TRACKED_PRINCIPALS:
            counts.popitem(last=False)
        return obs

    def _process(self, obs: Observation) -> None:
        obs = self._number(obs)
        raised: list[Alert] = []
        errors = 0
        for det in self.detectors:
            try:
                raised.extend(det.observe(obs))
            except Exception as err:
                errors += 1
                self._count_error(getattr(det, "name", type(det).__name__), err)
        self._finish(raised, errors)

    def _labels(self, item: Feedback) -> None:
        raised: list[Alert] = []
        errors = 0
        for det in self.detectors:
            record = getattr(det, "record_feedback", None)
            if not callable(record):
                continue
            kwargs = {"labels": item.labels, "outputs": item.outputs, "time": item.time}
            if item.inputs is not None and _takes_inputs(record):
                kwargs["inputs"] = item.inputs
            try:
                raised.extend(record(**kwargs))
            except Exception as err:
                errors += 1
                self._count_error(getattr(det, "name", type(det).__name__), err)
        self._finish(raised, errors)

    def _finish(self, raised: list[Alert], errors: int) -> None:
        if raised and self.on_alerts is not None:
            try:
                self.on_alerts(raised)
            except Exception as err:
                errors += 1
                self._report_once(("on_alerts", type(err).__name__), "alert handler", err)
        with self._lock:
            self.processed += 1
            self.alerts += len(raised)
            self.errors += errors

    def _count_error(self, name: str, err: Exception) -> None:
        with self._lock:
            if name in self.detector_errors:
                self.detector_errors[name] += 1
            else:
                self.errors += 1
        self._report_once((name, type(err).__name__), f"detector {name!r}", err)

    def _report_once(self, key: tuple[str, str], what: str, err: Exception) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        first = str(err).splitlines()[0][:200] if str(err) else ""
        _log.error(
            "%s raised %s: %s (skipped for this observation; further %s errors counted, not logged)",
            what,
            type(err).__name__,
            first,
            type(err).__name__,
        )


def _takes_inputs(record: Callable[..., object]) -> bool:
    """Whether a detector's ``record_feedback`` accepts the rows (``inputs=``)."""
    try:
        return "inputs" in inspect.signature(record).parameters
    except (TypeError, ValueError):
        return False
