"""Detection and decision-log persistence in a process of their own (the guard's sidecar).

The detectors (60-300 us per observation) and the decision log's writes (about 100 us per row) are
CPU work in Python: in the server process they hold the GIL that the request path needs. The sidecar
moves them to a process spawned per server worker, which owns its own workspace connection, its own
:class:`~mlsecops.runtime.hook.DetectorHook` (detectors and the ``on_alerts`` callback, the response
engine built there from the policy) and its own :class:`~mlsecops.runtime.decisions.DecisionLog`.

The request path pays a lock and an append: :meth:`Sidecar.put` adds a compact tuple (strings,
numbers, arrays as bytes) to a bounded buffer, never waits, and counts what a full buffer refuses.
A flusher thread pickles what is buffered every :data:`FLUSH_INTERVAL_S` into one message on a pipe;
the sidecar unpacks it into the hook's and the log's own bounded queues (which drop and count as in
the in-process mode). Nothing is dropped silently: the request path's drops, the hook's and the
log's are all counted and summed in the proxies' ``dropped``.

The proxies :class:`RemoteHook` and :class:`RemoteDecisionLog` keep the interfaces of the in-process
classes that the app and the tests use (``submit``, ``record``, ``flush``, ``stop``, ``close``,
``stats`` and the counters). The sidecar exits when its pipe closes (the server exited or died).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import pickle
import random
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mlsecops.monitor.interface import Observation
from mlsecops.runtime.hook import Feedback

__all__ = [
    "FLUSH_INTERVAL_S",
    "RemoteDecisionLog",
    "RemoteHook",
    "Sidecar",
    "SidecarError",
    "SidecarSpec",
]

_log = logging.getLogger("mlsecops.runtime.sidecar")

FLUSH_INTERVAL_S = 0.02
"""Longest a served request waits in the server before it is sent to the sidecar (detection delay)."""
BUFFER_MAX = 20_000
"""Requests buffered in the server for the sidecar; beyond, new ones are dropped and counted."""
BATCH_MAX = 512
"""Requests per message to the sidecar (bounds one message's size)."""
START_TIMEOUT_S = 180.0
"""How long the server waits for the sidecar to load the model and build its detectors."""
STATS_INTERVAL_S = 0.25
"""How often the sidecar publishes its counters to the server."""
CLOSE_TIMEOUT_S = 30.0
"""How long closing waits for the sidecar to drain (detectors and writes) before stopping it."""

_HOOK = ("submitted", "dropped", "processed", "errors", "alerts", "queued")
_LOG = ("sampled", "unsampled", "written", "dropped", "errors", "retries", "purged", "queued")
_N_STATS = len(_HOOK) + len(_LOG)


class SidecarError(Exception):
    """The sidecar could not start (its message says why, in one line)."""


@dataclass(frozen=True)
class SidecarSpec:
    """What the sidecar builds (picklable; no secrets: the database URL stays in the environment).

    Attributes:
        policy: The guard policy (the sidecar builds the response engine and the log from it).
        model_spec: What to load the model for the detectors from: a pinned registry reference
            (``name@3``) or a local path; None when ``model_info`` describes it (upstream mode).
        model_name: The name the model is served under.
        model_digest: The served model's digest (the sidecar refuses a different artifact).
        model_info: The model facts for detectors of an upstream model (no adapter there).
        profile: The model's data profile (the detectors' baseline), or None.
        detect: Build the detectors (``monitor.enabled``).
    """

    policy: Any
    model_spec: str | None
    model_name: str
    model_digest: str
    model_info: dict[str, Any] | None
    profile: dict[str, Any] | None
    detect: bool


def _pack(a: np.ndarray | None) -> tuple[bytes, tuple[int, ...], str] | None:
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    return (a.tobytes(), a.shape, a.dtype.str)


def _unpack(p: tuple[bytes, tuple[int, ...], str] | None) -> np.ndarray | None:
    if p is None:
        return None
    data, shape, dtype = p
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)


class Sidecar:
    """The server's side of the sidecar: start it, feed it, read its counters, close it.

    Args:
        spec: What the sidecar builds.
        buffer_max: Requests buffered in the server (beyond: dropped, counted).

    Raises:
        SidecarError: it could not start (the model, the policy's detectors or the database).
    """

    def __init__(self, spec: SidecarSpec, *, buffer_max: int = BUFFER_MAX) -> None:
        ctx = mp.get_context("spawn")
        self.buffer_max = buffer_max
        self._stats = ctx.Array("q", _N_STATS, lock=False)
        recv, self._send = ctx.Pipe(duplex=False)
        self._replies, reply_send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_main, args=(spec, recv, reply_send, self._stats), name="mlsecops-sidecar", daemon=True
        )
        self._proc.start()
        recv.close()
        reply_send.close()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._buf: list[tuple[Any, ...]] = []
        self._closed = False
        self.dropped = {"obs": 0, "log": 0, "fb": 0}
        """Records refused by the server-side buffer (full, or the sidecar closed), by kind."""
        self.detectors: tuple[str, ...] = ()
        if not self._replies.poll(START_TIMEOUT_S):
            self._kill()
            raise SidecarError(f"the detector sidecar did not start within {START_TIMEOUT_S:g} s")
        try:
            kind, value = self._replies.recv()
        except (EOFError, OSError):
            self._kill()
            raise SidecarError("the detector sidecar exited while starting (see its log above)") from None
        if kind != "ready":
            self._kill()
            raise SidecarError(str(value))
        self.detectors = tuple(value["detectors"])
        self.takes_feedback = bool(value["feedback"])
        self._tokens = 0
        self._flusher = threading.Thread(target=self._run, name="mlsecops-sidecar-feed", daemon=True)
        self._flusher.start()

    # -- request path ---------------------------------------------------------------------------

    def put(self, item: tuple[Any, ...]) -> bool:
        """Buffer one record (``("obs" | "log", ...)``) for the sidecar; never blocks.

        Returns:
            False (counted under its kind) when the buffer is full or the sidecar closed.
        """
        with self._lock:
            if self._closed or len(self._buf) >= self.buffer_max:
                self.dropped[item[0]] += 1
                return False
            self._buf.append(item)
        return True

    # -- counters -------------------------------------------------------------------------------

    def hook_stats(self) -> dict[str, int]:
        """The sidecar hook's counters (as last published)."""
        return {k: int(self._stats[i]) for i, k in enumerate(_HOOK)}

    def log_stats(self) -> dict[str, int]:
        """The sidecar log's counters (as last published)."""
        return {k: int(self._stats[len(_HOOK) + i]) for i, k in enumerate(_LOG)}

    # -- life cycle -----------------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Send what is buffered and wait until the sidecar has written and examined everything."""
        return self._control("flush", timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is buffered, let the sidecar drain and exit (stopped after ``timeout``)."""
        with self._lock:
            if self._closed:
                return
        ok = self._control("close", timeout)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._proc.join(5.0 if ok else 0.1)
        if self._proc.is_alive():
            _log.warning("the detector sidecar did not finish in %.0f s; stopped", timeout)
            self._kill()
        with contextlib.suppress(OSError):
            self._send.close()

    def _control(self, kind: str, timeout: float) -> bool:
        if not self._proc.is_alive():
            return False
        with self._send_lock:
            self._tokens += 1
            token = self._tokens
            self._send_batch()
            try:
                self._send.send_bytes(pickle.dumps([("ctl", kind, token, timeout)]))
            except OSError:
                return False
        end = time.monotonic() + timeout + 5.0
        while (left := end - time.monotonic()) > 0:
            if not self._replies.poll(left):
                return False
            try:
                reply = self._replies.recv()
            except (EOFError, OSError):
                return False
            if reply[0] == kind and reply[1] == token:
                return bool(reply[2])
        return False

    def _kill(self) -> None:
        with contextlib.suppress(Exception):
            self._proc.kill()
            self._proc.join(2.0)

    def _send_batch(self) -> None:
        """Send what is buffered (the caller holds the send lock)."""
        while True:
            with self._lock:
                batch, self._buf = self._buf[:BATCH_MAX], self._buf[BATCH_MAX:]
            if not batch:
                return
            try:
                self._send.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError):  # the sidecar is gone: count what it will never see
                with self._lock:
                    for lost in (*batch, *self._buf):
                        self.dropped[lost[0]] += 1
                    self._buf.clear()
                    self._closed = True
                return

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            time.sleep(FLUSH_INTERVAL_S)
            with self._send_lock:
                self._send_batch()


class RemoteHook:
    """``DetectorHook``'s interface in the server, the detectors running in the sidecar."""

    def __init__(self, sidecar: Sidecar) -> None:
        self._sidecar = sidecar
        self.detectors = sidecar.detectors
        """The detectors' names (the objects live in the sidecar)."""
        self._closed = False
        self._lock = threading.Lock()
        self._dropped = 0

    def submit(self, observation: Observation) -> bool:
        """Hand an observation to the sidecar's detectors; never blocks (a refusal is counted)."""
        if self._closed:
            with self._lock:
                self._dropped += 1
            return False
        o = observation
        return self._sidecar.put(
            (
                "obs",
                o.time,
                o.principal,
                o.model,
                _pack(o.inputs),
                _pack(o.outputs),
                o.version,
                o.query_index,
                o.accepted,
                o.source,
            )
        )

    def feedback(self, item: Feedback) -> bool:
        """Hand labels to the sidecar's detectors (``DetectorHook.feedback``); never blocks."""
        if self._closed:
            with self._lock:
                self._dropped += 1
            return False
        return self._sidecar.put(
            (
                "fb",
                item.time,
                item.principal,
                item.model,
                item.version,
                _pack(item.labels),
                _pack(item.outputs),
                _pack(item.inputs),
            )
        )

    @property
    def takes_feedback(self) -> bool:
        """Whether a sidecar detector takes labels."""
        return self._sidecar.takes_feedback

    @property
    def dropped(self) -> int:
        """Observations dropped here, in the server's buffer, or by the sidecar's full queue."""
        sidecar = self._sidecar.dropped
        return self._dropped + sidecar["obs"] + sidecar["fb"] + self._sidecar.hook_stats()["dropped"]

    def start(self) -> RemoteHook:
        """Nothing to start (the sidecar runs already); returns self."""
        return self

    def stop(self, drain: bool = True, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Stop taking observations; the sidecar drains them when the decision log closes it."""
        self._closed = True
        if drain:
            return self._sidecar.flush(timeout)
        return True

    def stats(self) -> dict[str, int]:
        """The sidecar hook's counters, with the server-side drops added."""
        s = self._sidecar.hook_stats()
        s["dropped"] = self.dropped
        return s


class RemoteDecisionLog:
    """``DecisionLog``'s interface in the server, the writes done by the sidecar.

    Sampling is decided here (what is not sampled is never sent).
    """

    def __init__(self, sidecar: Sidecar, policy: Any, *, rng: random.Random | None = None) -> None:
        self._sidecar = sidecar
        self.policy = policy
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.unsampled = 0
        self._refused = 0

    def record(
        self,
        *,
        principal: str,
        model: str,
        version: str,
        decision: str,
        status: int,
        latency_ms: float,
        inputs: np.ndarray | None = None,
        outputs: np.ndarray | None = None,
        time_s: float | None = None,
        source: str = "",
    ) -> bool:
        """As ``DecisionLog.record``: sample, then buffer for the sidecar; never blocks."""
        rate = self.policy.sample_rate
        if rate < 1.0 and not self._rng.random() < rate:
            with self._lock:
                self.unsampled += 1
            return False
        return self._sidecar.put(
            (
                "log",
                time.time() if time_s is None else time_s,
                principal,
                model,
                version,
                decision,
                status,
                latency_ms,
                _pack(inputs),
                _pack(outputs) if self.policy.raw_inputs or self.policy.group is not None else None,
                source,
            )
        )

    def start(self) -> None:
        """Nothing to start (the sidecar runs already)."""

    def flush(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until everything recorded so far is written (and examined by the detectors)."""
        return self._sidecar.flush(timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Drain and stop the sidecar."""
        self._sidecar.close(timeout)

    def stats(self) -> dict[str, int]:
        """As ``DecisionLog.stats``; ``dropped`` includes the server-side buffer's drops."""
        s = self._sidecar.log_stats()
        s["unsampled"] = self.unsampled
        s["dropped"] += self._sidecar.dropped["log"]
        return s

    def __getattr__(self, name: str) -> int:
        if name in _LOG:
            return self.stats()[name]
        raise AttributeError(name)


# ----------------------------------------------------------------------------- the sidecar process


def _build(spec: SidecarSpec) -> tuple[Any, Any, Any]:
    """Workspace, hook and decision log of the sidecar (raises what startup reports)."""
    from mlsecops.core.settings import Settings
    from mlsecops.runtime.decisions import DecisionLog
    from mlsecops.runtime.hook import DetectorHook
    from mlsecops.store import Workspace

    ws = Workspace.from_settings(Settings())
    detectors: list[Any] = []
    on_alerts = None
    model: Any = spec.model_info
    logging_policy = spec.policy.logging
    if (spec.detect or logging_policy.explain is not None) and spec.model_spec is not None:
        from mlsecops.runtime.serving import load_served

        served = load_served(ws, spec.model_spec, name=spec.model_name)
        if served.digest != spec.model_digest:
            raise SidecarError(
                f"{spec.model_spec} changed while the guard started (digest {served.digest[:12]}, "
                f"served {spec.model_digest[:12]}); restart the guard"
            )
        model = served.adapter
    if spec.detect:
        from mlsecops.monitor.detectors import build_detectors

        detectors = list(
            build_detectors(spec.policy.monitor, model, baseline=spec.profile, model_name=spec.model_name)
        )
        if detectors:
            from mlsecops.runtime.response import alert_sink

            on_alerts = alert_sink(ws, spec.policy)
    hook = DetectorHook(detectors, queue_size=spec.policy.monitor.queue_size, on_alerts=on_alerts).start()
    from mlsecops.runtime.decision_audit import build_auditor

    local = model if spec.model_spec is not None else None  # an upstream model cannot be explained here
    auditor = build_auditor(logging_policy, local, spec.profile)
    log = DecisionLog(ws, logging_policy.model_copy(update={"sample_rate": 1.0}), auditor=auditor)
    return ws, hook, log


def _publish(stats: Any, hook: Any, log: Any) -> None:
    h = hook.stats()
    for i, k in enumerate(_HOOK):
        stats[i] = h[k]
    s = log.stats()
    for i, k in enumerate(_LOG):
        stats[len(_HOOK) + i] = s[k]


def _main(spec: SidecarSpec, recv: Connection, reply: Connection, stats: Any) -> None:
    """The sidecar process: build, then dispatch what the server sends until told to close."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sidecar %(levelname)s %(name)s: %(message)s")
    try:
        ws, hook, log = _build(spec)
    except Exception as err:  # reported to the server, which refuses to start with this line
        diagnostics = getattr(err, "diagnostics", None)
        line = diagnostics() if callable(diagnostics) else f"{type(err).__name__}: {err}"
        with contextlib.suppress(OSError):
            reply.send(("error", " ".join(str(line).split())[:500]))
        return
    names = [getattr(d, "name", type(d).__name__) for d in hook.detectors]
    logs_labels = log.auditor is not None and log.auditor.group is not None  # decision auditing
    reply.send(("ready", {"detectors": names, "feedback": hook.takes_feedback or logs_labels}))
    done = threading.Event()

    def publisher() -> None:
        while not done.wait(STATS_INTERVAL_S):
            _publish(stats, hook, log)

    threading.Thread(target=publisher, name="mlsecops-sidecar-stats", daemon=True).start()
    try:
        _serve(recv, reply, stats, hook, log)
    finally:
        done.set()
        hook.stop(drain=True)
        log.close()
        _publish(stats, hook, log)
        ws.close()


def _examined(hook: Any) -> bool:
    s = hook.stats()
    return not s["queued"] and s["processed"] >= s["submitted"]


def _serve(recv: Connection, reply: Connection, stats: Any, hook: Any, log: Any) -> None:
    while True:
        try:
            batch = pickle.loads(recv.recv_bytes())
        except (EOFError, OSError):  # the server is gone: drain (the caller's finally) and exit
            return
        for item in batch:
            kind = item[0]
            if kind == "obs":
                _, t, principal, model, inputs, outputs, version, index, accepted, source = item
                hook.submit(
                    Observation(
                        time=t,
                        principal=principal,
                        model=model,
                        inputs=_unpack(inputs),  # type: ignore[arg-type]  # never None for "obs"
                        outputs=_unpack(outputs),
                        version=version,
                        query_index=index,
                        accepted=accepted,
                        source=source,
                    )
                )
            elif kind == "fb":
                _, t, principal, model, version, labels, outputs, rows = item
                got = (_unpack(labels), _unpack(outputs), _unpack(rows))
                hook.feedback(Feedback(t, principal, model, version, *got))  # type: ignore[arg-type]
                if got[0] is not None and got[1] is not None and got[2] is not None:
                    log.record_feedback(
                        principal=principal,
                        model=model,
                        version=version,
                        labels=got[0],
                        outputs=got[1],
                        inputs=got[2],
                        time_s=t,
                    )
            elif kind == "log":
                _, t, principal, model, version, decision, status, ms, inputs, outputs, source = item
                log.record(
                    principal=principal,
                    model=model,
                    version=version,
                    decision=decision,
                    status=status,
                    latency_ms=ms,
                    inputs=_unpack(inputs),
                    outputs=_unpack(outputs),
                    time_s=t,
                    source=source,
                )
            elif kind == "ctl":
                _, what, token, timeout = item
                end = time.monotonic() + timeout
                ok = log.flush(timeout)
                while not _examined(hook) and time.monotonic() < end:
                    time.sleep(0.01)
                ok = ok and _examined(hook)
                _publish(stats, hook, log)
                if what == "close":
                    hook.stop(drain=True, timeout=max(0.1, end - time.monotonic()))
                    log.close(max(0.1, end - time.monotonic()))
                    _publish(stats, hook, log)
                with contextlib.suppress(OSError):
                    reply.send((what, token, ok))
                if what == "close":
                    return
