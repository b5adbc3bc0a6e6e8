"""The decision log: sampled requests of the guard, kept in the workspace store, replayable offline.

``DecisionLog(ws, policy.logging)`` is fed by the request path with ``record(...)``, which only samples
(``logging.sample_rate``) and appends to a bounded buffer: it never touches the database and never
waits. A background writer thread takes batches from the buffer, computes what is stored (the input
digest, the row count and, only when ``logging.raw_inputs`` is on, the raw inputs and outputs as JSON)
and inserts each batch in one transaction. Every ``purge_interval_s`` it deletes rows older than
``logging.retention_days`` (with one audit event per purge that deleted something).

What it guarantees, and what it does not:

- ``record`` costs a sampling draw, a lock and an append (a few microseconds). A full buffer (``queue_size`` entries
  or ``max_queued_bytes`` of arrays, counting the batch being written) drops the new entry and counts
  it in ``dropped``; the request is served either way.
- When the database goes away, the writer keeps the batch it holds and retries with exponential
  backoff (up to ``BACKOFF_MAX_S``); new entries queue up to the bound meanwhile. Nothing recorded
  within the bound is lost; what came beyond it is counted in ``dropped``. A row the database refuses
  for good (not a connection problem) is isolated, counted in ``errors`` and skipped, so one bad row
  cannot hold the log.
- ``close()`` drains: it writes what is buffered, retrying until its timeout; what still cannot be
  written then is counted in ``dropped`` and logged.
- Without ``raw_inputs`` no request data is stored: only the digest (which still tells repeated inputs
  apart, and lets a request be matched to a file one has) and the row count.
- Decision auditing (``logging.group``, ``logging.explain``; ``runtime/decision_audit.py``): the writer
  also stores each row's group and predicted class, and a local explanation of a sample of the
  decisions; labels sent as feedback are logged as rows of their own (``decision`` ``feedback``, never
  sampled out). All of it is computed by the writer, off the request path.

``export_jsonl`` writes the rows that hold raw inputs in the replay format of ``mlsecops monitor
replay`` (one request per line: ``time``, ``principal``, ``inputs``, ``outputs``, ``model``,
``version``). A log sampled below 1.0 replays with gaps: per-principal counts (``query_index``) then
count the logged requests, not all of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from mlsecops.core.errors import InputError
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.runtime.decision_audit import DecisionAuditor
from mlsecops.runtime.policy import LoggingPolicy
from mlsecops.store import Workspace, audit

__all__ = [
    "BACKOFF_MAX_S",
    "DEFAULT_QUEUE_SIZE",
    "MAX_QUEUED_BYTES",
    "DecisionLog",
    "ExportResult",
    "export_jsonl",
    "input_digest",
    "purge",
]

_log = logging.getLogger("mlsecops.runtime.decisions")

DEFAULT_QUEUE_SIZE = 10_000
"""Entries waiting for the writer (a database outage of about a minute at 150 sampled requests/s)."""
MAX_QUEUED_BYTES = 64 << 20
"""Bytes of input and output arrays waiting for the writer: many large requests cannot exhaust memory."""
BATCH_MAX = 500
"""Rows inserted per transaction: one fsync for many requests, and a bounded transaction."""
WRITE_LINGER_S = 0.05
"""How long the writer lets rows gather before a write (fewer, larger transactions)."""
PURGE_INTERVAL_S = 600.0
"""Seconds between retention purges by the writer."""
BACKOFF_START_S = 0.05
"""First wait before retrying a write that failed because the database was unreachable."""
BACKOFF_MAX_S = 5.0
"""Longest wait between retries: a database that comes back is written to within this delay."""
CLOSE_TIMEOUT_S = 10.0
"""How long ``close`` keeps trying to write what is buffered."""
PURGE_ACTION = "runtime.decisions.purge"
"""Audit action of a retention purge that deleted rows."""

_TABLE: Any = DecisionRecord.__table__

_STR_LIMITS = {"principal": 200, "model": 200, "version": 100, "decision": 100, "source": 200}
"""Column widths (migration 0007): values are cut to fit, so a long name never fails a batch."""


@dataclass(frozen=True, slots=True)
class _Entry:
    time: float
    principal: str
    model: str
    version: str
    decision: str
    status: int
    latency_ms: float
    inputs: np.ndarray | None
    outputs: np.ndarray | None
    source: str
    nbytes: int
    labels: np.ndarray | None = None


FEEDBACK = "feedback"
"""``decision`` of a row logged from labels sent to ``POST /v2/models/{name}/feedback``."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What ``export_jsonl`` wrote.

    Attributes:
        written: Requests written (lines).
        skipped: Logged requests without raw inputs (``logging.raw_inputs`` was off), not replayable.
        rejected: Rejected requests left out (``include_rejected=False``).
        corrupt: Rows whose stored JSON could not be read back (left out).
        unreplayable: Rows without a principal, or whose inputs are not rows of finite numbers of one
            shape (a rejected request with NaN or the wrong width), left out.
    """

    written: int
    skipped: int
    rejected: int = 0
    corrupt: int = 0
    unreplayable: int = 0


def input_digest(inputs: np.ndarray | None) -> str:
    """SHA-256 of the canonical bytes of a request's inputs ("" for none).

    Numbers are hashed as little-endian float64 in C order after a header naming the shape, with -0.0
    made 0.0 and every NaN the same NaN, so the same rows give the same digest whatever dtype they
    were sent in (``[[1, 2]]`` and ``[[1.0, 2.0]]`` are one input to the model). Anything else is
    hashed as compact JSON.
    """
    if inputs is None:
        return ""
    arr = np.asarray(inputs)
    h = hashlib.sha256()
    if arr.dtype.kind in "biuf":
        data = np.ascontiguousarray(arr, dtype="<f8") + 0.0  # a copy; + 0.0 turns -0.0 into 0.0
        data[np.isnan(data)] = np.nan
        h.update(b"mlsecops.inputs/1 f8 " + "x".join(map(str, arr.shape)).encode() + b"\n")
        h.update(data.tobytes())
    else:
        h.update(b"mlsecops.inputs/1 json\n")
        h.update(json.dumps(arr.tolist(), default=str, separators=(",", ":")).encode())
    return h.hexdigest()


def _json_rows(arr: np.ndarray) -> str:
    """Standard JSON of an array: non-finite numbers become null (JSON has no NaN)."""
    a = np.asarray(arr)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        obj = a.astype(object)
        obj[~np.isfinite(a)] = None
        return json.dumps(obj.tolist(), separators=(",", ":"))
    if a.dtype.kind in "biuf":
        return json.dumps(a.tolist(), separators=(",", ":"))
    return json.dumps(a.tolist(), default=str, separators=(",", ":"))


def _fit(value: object, column: str) -> str:
    """Text that every database stores: NUL shown as ``\\x00`` (PostgreSQL refuses it), cut to the width."""
    return str(value).replace("\x00", "\\x00")[: _STR_LIMITS[column]]


def _transient(err: BaseException) -> bool:
    """True for a database that is unreachable or busy (retry); False for a row it refuses (skip)."""
    cause: BaseException | None = err
    for _ in range(4):  # WorkspaceError wraps the SQLAlchemy error, which wraps the driver's
        if isinstance(cause, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError):
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, OSError | ConnectionError):
            return True
        if cause is None:
            break
        cause = cause.__cause__
    return False


class DecisionLog:
    """Sampled, non-blocking decision log with a background writer. Thread-safe.

    Args:
        ws: The workspace (its database holds the log).
        policy: The guard policy's ``logging`` section.
        queue_size: Most entries buffered (the batch being written included).
        max_queued_bytes: Most bytes of arrays buffered.
        batch_size: Most rows per insert transaction.
        purge_interval_s: Seconds between retention purges.
        actor: Audit actor of purges.
        rng: Random source of the sampling (tests pass a seeded one).
        start: Start the writer now (tests may start it later with :meth:`start`).
        auditor: Groups, predictions and explanations to store (``logging.group``/``explain``).
    """

    def __init__(
        self,
        ws: Workspace,
        policy: LoggingPolicy,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        batch_size: int = BATCH_MAX,
        purge_interval_s: float = PURGE_INTERVAL_S,
        actor: str = "guard",
        rng: random.Random | None = None,
        start: bool = True,
        auditor: DecisionAuditor | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or max_queued_bytes < 1:
            raise ValueError("queue_size, batch_size and max_queued_bytes must be at least 1")
        self._ws = ws
        self.policy = policy
        self.queue_size = queue_size
        self.max_queued_bytes = max_queued_bytes
        self.batch_size = batch_size
        self.purge_interval_s = purge_interval_s
        self.actor = actor
        self.auditor = auditor
        self._rng = rng or random.Random()
        self._cv = threading.Condition(threading.Lock())
        self._buf: deque[_Entry] = deque()
        self._held = 0  # entries buffered or in the batch being written
        self._held_bytes = 0
        self._closing = False
        self._deadline = math.inf
        self._down_since: float | None = None
        self._warned_rows: set[str] = set()
        self.sampled = 0
        """Requests chosen by the sampling and buffered."""
        self.unsampled = 0
        """Requests the sampling left out."""
        self.written = 0
        """Rows inserted."""
        self.dropped = 0
        """Sampled requests lost: buffer full, or still unwritten when ``close`` gave up."""
        self.errors = 0
        """Rows the database refused for good, or that could not be prepared (skipped)."""
        self.retries = 0
        """Failed write attempts that were retried (database unreachable)."""
        self.purged = 0
        """Rows deleted by retention purges."""
        self._thread = threading.Thread(target=self._run, name="mlsecops-decision-log", daemon=True)
        if start:
            self.start()

    # -- request path ---------------------------------------------------------------------------

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
        """Log one request, maybe (sampling); never blocks, never raises for a full buffer or a down DB.

        The arrays are kept by reference until written: the caller must not modify them afterwards.

        Args:
            principal: Caller identity (never a key or token).
            model: Model name.
            version: Version that answered, "" if none.
            decision: ``accepted`` or ``rejected:<reason>``.
            status: HTTP status sent.
            latency_ms: Time spent on the request.
            inputs: The request's rows as the model received them (None if never decoded).
            outputs: The model's output before hardening (None if not called).
            time_s: Arrival time, Unix seconds (default: now).
            source: Stream or tenant label, "" if none.

        Returns:
            True when buffered for writing; False when left out by the sampling or dropped.
        """
        rate = self.policy.sample_rate
        if rate < 1.0 and not self._rng.random() < rate:
            with self._cv:
                self.unsampled += 1
            return False
        return self._buffer(
            principal, model, version, decision, status, latency_ms, inputs, outputs, time_s, source, None
        )

    def record_feedback(
        self,
        *,
        principal: str,
        model: str,
        version: str,
        labels: np.ndarray,
        outputs: np.ndarray,
        inputs: np.ndarray,
        time_s: float | None = None,
    ) -> bool:
        """Log labelled rows sent as feedback (with ``logging.group`` only; never sampled out).

        Returns:
            True when buffered; False without ``logging.group`` or when dropped (buffer full).
        """
        if self.auditor is None or self.auditor.group is None:
            return False
        return self._buffer(
            principal, model, version, FEEDBACK, 200, 0.0, inputs, outputs, time_s, "", labels
        )

    def _buffer(
        self,
        principal: str,
        model: str,
        version: str,
        decision: str,
        status: int,
        latency_ms: float,
        inputs: np.ndarray | None,
        outputs: np.ndarray | None,
        time_s: float | None,
        source: str,
        labels: np.ndarray | None,
    ) -> bool:
        raw = self.policy.raw_inputs
        keep_outputs = raw or (self.auditor is not None and self.auditor.wants_outputs)
        nbytes = 0
        if inputs is not None:
            nbytes += int(getattr(inputs, "nbytes", 0))
        if keep_outputs and outputs is not None:
            nbytes += int(getattr(outputs, "nbytes", 0))
        entry = _Entry(
            time.time() if time_s is None else time_s,
            principal,
            model,
            version,
            decision,
            status,
            latency_ms,
            inputs,
            outputs if keep_outputs else None,
            source,
            nbytes,
            labels,
        )
        with self._cv:
            if (
                self._closing
                or self._held >= self.queue_size
                or self._held_bytes + nbytes > self.max_queued_bytes
            ):
                self.dropped += 1
                return False
            self._buf.append(entry)
            self._held += 1
            self._held_bytes += nbytes
            self.sampled += 1
            self._cv.notify()
        return True

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._cv:
            if self._thread.ident is None and not self._closing:
                self._thread.start()

    def flush(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until everything buffered so far is written; True if it was within ``timeout``."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._held:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting entries, write what is buffered (retrying until ``timeout``), stop the writer."""
        with self._cv:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cv.notify_all()
        if self._thread.ident is None:  # never started: start it now to drain
            self._thread.start()
        self._thread.join(timeout + BACKOFF_MAX_S)
        with self._cv:
            lost = self._held
            if lost and not self._thread.is_alive():
                self.dropped += lost
                self._held = self._held_bytes = 0
                self._buf.clear()
        if lost:
            _log.warning("decision log closed with %d request(s) not written (database unavailable)", lost)

    def stats(self) -> dict[str, int]:
        """Counters for ``/metrics``: sampled, unsampled, written, dropped, errors, retries, purged, queued."""
        with self._cv:
            return {
                "sampled": self.sampled,
                "unsampled": self.unsampled,
                "written": self.written,
                "dropped": self.dropped,
                "errors": self.errors,
                "retries": self.retries,
                "purged": self.purged,
                "queued": self._held,
            }

    # -- writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_purge = time.monotonic()
        while True:
            with self._cv:
                while not self._buf and not self._closing:
                    wait = next_purge - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                if not self._buf and self._closing:
                    return
                if self._buf and len(self._buf) < self.batch_size and not self._closing:
                    # let a batch gather: one transaction (one fsync) for many rows
                    self._cv.wait(WRITE_LINGER_S)
                batch = [self._buf.popleft() for _ in range(min(self.batch_size, len(self._buf)))]
            if batch:
                written = self._write(batch)
                with self._cv:
                    self._held -= len(batch)
                    self._held_bytes -= sum(e.nbytes for e in batch)
                    self.written += max(written, 0)
                    self._cv.notify_all()
                if written < 0:  # closing and the database stayed down: count what is left as lost
                    with self._cv:
                        self.dropped += len(batch) + len(self._buf)
                        self._held = self._held_bytes = 0
                        self._buf.clear()
                        self._cv.notify_all()
                    _log.warning("decision log: database unavailable at close; requests not written")
                    return
            if time.monotonic() >= next_purge and not self._closing:
                next_purge = time.monotonic() + self.purge_interval_s
                try:
                    n = purge(self._ws, self.policy.retention_days, actor=self.actor)
                except Exception as err:  # the next purge will try again; the log keeps writing
                    _log.warning("decision log: retention purge failed: %s", str(err).splitlines()[0][:200])
                else:
                    with self._cv:
                        self.purged += n

    def _row(self, e: _Entry) -> dict[str, Any]:
        raw = self.policy.raw_inputs
        rows = 0
        if e.inputs is not None:
            shape = np.shape(e.inputs)
            rows = int(shape[0]) if shape else 1
        return {
            "ts_us": round(e.time * 1e6),
            "principal": _fit(e.principal, "principal"),
            "model": _fit(e.model, "model"),
            "version": _fit(e.version, "version"),
            "decision": _fit(e.decision, "decision"),
            "status": int(e.status),
            "latency_ms": float(e.latency_ms) if math.isfinite(e.latency_ms) else -1.0,
            "input_digest": input_digest(e.inputs),
            "rows": rows,
            "source": _fit(e.source, "source"),
            "inputs": _json_rows(e.inputs) if raw and e.inputs is not None else None,
            "outputs": _json_rows(e.outputs) if raw and e.outputs is not None else None,
            **self._audit(e),
        }

    def _audit(self, e: _Entry) -> dict[str, str | None]:
        """Group, predicted class, explanation and labels of an entry (decision auditing), as JSON."""
        a = self.auditor
        if a is None:
            return {}
        groups = a.groups(e.inputs)
        preds = a.predictions(e.outputs)
        explanation = None
        if e.decision == "accepted":
            try:
                explanation = a.explanation(e.inputs)
            except Exception as err:  # a model that fails on the occluded rows must not cost the row
                self._warn_once(
                    "explain", f"decision log: a decision could not be explained: {type(err).__name__}"
                )
        labels = None if e.labels is None else [int(v) for v in np.asarray(e.labels).reshape(-1)]
        dump = json.dumps
        return {
            "groups": None if groups is None else dump(groups, separators=(",", ":")),
            "predictions": None if preds is None else dump(preds, separators=(",", ":")),
            "explanation": None if explanation is None else dump(explanation, separators=(",", ":")),
            "labels": None if labels is None else dump(labels, separators=(",", ":")),
        }

    def _write(self, batch: list[_Entry]) -> int:
        """Insert the batch; the number written, or -1 when closing gave up on an unreachable database."""
        rows = []
        for e in batch:
            try:
                rows.append(self._row(e))
            except Exception as err:  # an odd array must not cost the batch
                with self._cv:
                    self.errors += 1
                self._warn_once(
                    "prepare", f"decision log: a request could not be logged: {type(err).__name__}"
                )
        if not rows:
            return 0
        delay = BACKOFF_START_S
        while True:
            try:
                self._insert(rows)
            except Exception as err:
                if not _transient(err):
                    return self._insert_one_by_one(rows)
                with self._cv:
                    self.retries += 1
                    closing, deadline = self._closing, self._deadline
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    _log.warning(
                        "decision log: database unavailable (%s); holding up to %d request(s), retrying",
                        str(err).splitlines()[0][:200],
                        self.queue_size,
                    )
                if closing and time.monotonic() + delay > deadline:
                    return -1
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self._down_since is not None:
                _log.warning("decision log: database back after %.1f s", time.monotonic() - self._down_since)
                self._down_since = None
            return len(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        # a Core insert on the table (not the ORM entity, whose bulk path costs about twice as much),
        # executemany in one transaction
        with self._ws.session() as s:
            s.execute(insert(_TABLE), rows)

    def _insert_one_by_one(self, rows: list[dict[str, Any]]) -> int:
        written = 0
        for row in rows:
            try:
                self._insert([row])
                written += 1
            except Exception as err:
                with self._cv:
                    self.errors += 1
                self._warn_once(
                    type(err).__name__, f"decision log: a row was refused: {str(err).splitlines()[0][:200]}"
                )
        return written

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned_rows:
            self._warned_rows.add(kind)
            _log.warning("%s (further ones counted, not logged)", message)


def purge(ws: Workspace, retention_days: float, *, now: float | None = None, actor: str = "guard") -> int:
    """Delete decision-log rows older than ``retention_days``; audit the purge when it deleted rows.

    Returns:
        Rows deleted.

    Raises:
        WorkspaceError: the database cannot be written.
    """
    now = time.time() if now is None else now
    cutoff = round((now - retention_days * 86_400.0) * 1e6)
    with ws.session() as s:
        result = s.execute(delete(DecisionRecord).where(DecisionRecord.ts_us < cutoff))
        deleted = int(getattr(result, "rowcount", 0) or 0)
        if deleted:
            audit.append(
                s,
                actor=actor,
                action=PURGE_ACTION,
                subject="runtime_decisions",
                details={
                    "deleted": deleted,
                    "before": dt.datetime.fromtimestamp(cutoff / 1e6, dt.UTC).isoformat(),
                    "retention_days": retention_days,
                },
            )
    return deleted


def _to_us(value: float | dt.datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = (value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)).timestamp()
    return round(float(value) * 1e6)


def export_jsonl(
    ws: Workspace,
    model: str,
    out: Path | IO[str],
    *,
    since: float | dt.datetime | None = None,
    until: float | dt.datetime | None = None,
    version: str | None = None,
    include_rejected: bool = False,
) -> ExportResult:
    """Write a model's logged requests in the replay format of ``mlsecops monitor replay``, oldest first.

    One line per request: ``{"time": <unix s>, "principal": ..., "inputs": [[...]], "outputs": [[...]],
    "model": ..., "version": ...}`` (``outputs`` only when logged). Only rows with raw inputs can be
    replayed; the others are counted in ``skipped``. Rejected requests are left out unless
    ``include_rejected``, then marked ``"accepted": false`` with their ``decision``. A file is written
    with mode 0600 (it holds request data).

    Args:
        ws: The workspace.
        model: Model name.
        out: A path, or an open text stream.
        since: From this time (Unix seconds or datetime; naive means UTC), inclusive.
        until: Up to this time, inclusive.
        version: Only requests answered by this version.
        include_rejected: Also write rejected requests.

    Raises:
        InputError: the output file cannot be written.
        WorkspaceError: the database cannot be read.
    """
    if isinstance(out, Path):
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as err:
            raise InputError(f"cannot write {out}: {err.strerror or err}") from err
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            return _export(ws, model, fh, _to_us(since), _to_us(until), version, include_rejected)
    return _export(ws, model, out, _to_us(since), _to_us(until), version, include_rejected)


def _export(
    ws: Workspace,
    model: str,
    fh: IO[str],
    since_us: int | None,
    until_us: int | None,
    version: str | None,
    include_rejected: bool,
) -> ExportResult:
    written = skipped = rejected = corrupt = unreplayable = 0
    for row in _rows(ws, model, since_us, until_us, version):
        accepted = row.decision == "accepted"
        if not accepted and not include_rejected:
            rejected += 1
            continue
        if row.inputs is None:
            skipped += 1
            continue
        try:
            inputs = json.loads(row.inputs)
            outputs = json.loads(row.outputs) if row.outputs is not None else None
        except ValueError:
            corrupt += 1
            continue
        # What replay reads: a principal, and rows of finite numbers of one width (a rejected request
        # may hold NaN, written as null, or the wrong shape: kept in the log, not replayable).
        if not row.principal or not _replayable(inputs) or (outputs is not None and not _replayable(outputs)):
            unreplayable += 1
            continue
        line: dict[str, Any] = {"time": row.ts_us / 1e6, "principal": row.principal, "inputs": inputs}
        if outputs is not None:
            line["outputs"] = outputs
        line["model"] = row.model
        line["version"] = row.version
        if row.source:
            line["source"] = row.source
        if not accepted:
            line["accepted"] = False
            line["decision"] = row.decision
        fh.write(json.dumps(line, separators=(", ", ": "), allow_nan=False) + "\n")
        written += 1
    return ExportResult(
        written=written, skipped=skipped, rejected=rejected, corrupt=corrupt, unreplayable=unreplayable
    )


def _replayable(rows: Any) -> bool:
    """A non-empty list of rows of finite numbers, all of one shape."""
    if not isinstance(rows, list) or not rows:
        return False
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return False
    return arr.ndim >= 2 and arr.shape[1] > 0 and bool(np.isfinite(arr).all())


_EXPORT_PAGE = 1_000
"""Rows read per round trip while exporting (memory stays bounded for any log size)."""


def _rows(
    ws: Workspace, model: str, since_us: int | None, until_us: int | None, version: str | None
) -> Iterator[Any]:
    """The model's rows in (time, id) order, read page by page with keyset pagination."""
    last: tuple[int, int] | None = None
    while True:
        q = select(
            DecisionRecord.id,
            DecisionRecord.ts_us,
            DecisionRecord.principal,
            DecisionRecord.model,
            DecisionRecord.version,
            DecisionRecord.decision,
            DecisionRecord.source,
            DecisionRecord.inputs,
            DecisionRecord.outputs,
        ).where(DecisionRecord.model == model)
        if since_us is not None:
            q = q.where(DecisionRecord.ts_us >= since_us)
        if until_us is not None:
            q = q.where(DecisionRecord.ts_us <= until_us)
        if version is not None:
            q = q.where(DecisionRecord.version == version)
        if last is not None:
            q = q.where(
                (DecisionRecord.ts_us > last[0])
                | ((DecisionRecord.ts_us == last[0]) & (DecisionRecord.id > last[1]))
            )
        q = q.order_by(DecisionRecord.ts_us, DecisionRecord.id).limit(_EXPORT_PAGE)
        with ws.session(readonly=True) as s:
            page = s.execute(q).all()
        if not page:
            return
        yield from page
        last = (page[-1].ts_us, page[-1].id)
