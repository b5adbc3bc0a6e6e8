"""Offline replay: a logged query stream through the same detectors the guard runs online.

``QUERIES.jsonl`` holds one request per line, as the guard's decision log writes it::

    {"time": 1733390000.5, "principal": "alice", "inputs": [[0.1, 2.3, ...], ...]}

with optional ``outputs`` (the model's class probabilities per row; recomputed from the model when
absent), ``model``, ``version``, ``source`` and ``accepted``. :func:`read_queries` streams the file
with bounded memory and refuses hostile lines with an ``InputError`` that names the line: a line over
``MAX_LINE_BYTES``, invalid UTF-8 or JSON, ``NaN``/``Infinity`` (or a number that overflows to it),
a missing or mistyped field, rows of another width than the model's, booleans or strings as
numbers. Nothing is skipped silently: a line is replayed or the replay stops at it.

Times out of order: a log written by several guard workers interleaves slightly, so requests are
re-ordered by time within a bounded window (``REORDER_ROWS`` requests and ``REORDER_BYTES`` of rows);
a request older than one already replayed (beyond the window) is refused with its line number, since
replaying it late would give the principal's detectors a different history than the guard saw.
Equal times keep file order. ``query_index`` is recomputed: the principal's 1-based request count for
the model, in time order.

:func:`replay` feeds the requests, batched for the model, to the detectors and returns a ``Report``:
``data["alerts"]`` (``{kind, principal, model, severity, query_index, time, evidence}`` each), one
finding per alert, per-detector metrics and the per-request detector cost.
"""

from __future__ import annotations

import heapq
import json
import math
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report
from mlsecops.core.severity import Severity, utcnow
from mlsecops.monitor.interface import Alert, Detector, Observation

__all__ = [
    "MAX_LINE_BYTES",
    "REORDER_BYTES",
    "REORDER_ROWS",
    "Query",
    "first_query",
    "load_baseline",
    "read_queries",
    "replay",
]

MAX_LINE_BYTES = 1 << 20
"""Longest line (1 MiB, the data readers' limit): a request of ~50,000 numbers; a line without a
break would otherwise be held whole."""

REORDER_ROWS = 4_096
"""Requests held back to re-order slightly interleaved times."""

REORDER_BYTES = 64 << 20
"""Bytes of rows held back for re-ordering (whichever bound is reached first releases the oldest)."""

BATCH_ROWS = 4_096
"""Rows whose outputs are computed by one model call during replay."""

MAX_PRINCIPAL_CHARS = 512
"""Longest principal id accepted (ids are names or JWT subjects, not documents)."""

BASELINE_SAMPLE_ROWS = 2_000
"""Rows sampled (uniformly) from a data file given as the baseline: the size of a profile's sample."""

_ATLAS = {"extraction": "AML.T0024", "query_attack": "AML.T0015", "adversarial_input": "AML.T0015"}
"""MITRE ATLAS techniques: exfiltration via the inference API; evade ML model."""

_FIELDS = {
    "time", "principal", "inputs", "outputs", "model", "version", "source", "accepted", "query_index",
    "decision",
}  # fmt: skip
"""Fields a line may hold (what ``mlsecops monitor export-log`` writes); any other is refused."""


@dataclass(frozen=True, slots=True)
class Query:
    """One logged request."""

    line: int
    time: float
    principal: str
    inputs: np.ndarray
    outputs: np.ndarray | None = None
    model: str = ""
    version: str = ""
    source: str = ""
    accepted: bool = True


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number JSON allows")


def _numbers(value: Any, what: str, where: str, width: int | None) -> np.ndarray:
    """A list of rows as float64 ``(n, width)``; nested rows (images) are flattened per row."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: {what} must be a non-empty list of rows")
    flat = all(
        isinstance(row, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
        for row in value
    )
    try:
        if flat:
            arr = np.asarray(value, dtype=np.float64)
        else:
            arr = np.asarray(value)  # nested rows: only an all-number array of one shape is accepted
            if arr.dtype.kind not in "iuf" or arr.ndim < 2 or _has_bool(value):
                raise InputError(f"{where}: {what} must be rows of numbers (found {_kind(arr)})")
            arr = arr.astype(np.float64).reshape(arr.shape[0], -1)
    except (ValueError, TypeError):
        raise InputError(f"{where}: {what} rows differ in width or shape") from None
    except OverflowError:
        raise InputError(f"{where}: {what} holds an integer too large for a float") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError(f"{where}: {what} rows differ in width or are empty")
    if width is not None and arr.shape[1] != width:
        raise InputError(f"{where}: {what} rows have {arr.shape[1]} values, the model takes {width}")
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: {what} holds a value that overflows to infinity")
    return arr


def _has_bool(value: list[Any]) -> bool:
    """True when a nested list holds a boolean anywhere (NumPy would read ``true`` as 1)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def _kind(arr: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "O": "mixed or ragged values"}.get(
        arr.dtype.kind, str(arr.dtype)
    )


def _parse(raw: bytes, line: int, path: str, width: int | None, n_classes: int | None) -> Query | None:
    where = f"{path} line {line}"
    text = raw.strip()
    if not text:
        return None
    try:
        record = json.loads(text.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8") from None
    except (ValueError, RecursionError) as err:
        raise InputError(f"{where}: not valid JSON ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for field in ("time", "principal", "inputs"):
        if field not in record:
            raise InputError(f"{where}: missing field {field!r}")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0][:60]!r}")
    t = record["time"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise InputError(f"{where}: time must be non-negative unix seconds, got {str(t)[:40]!r}")
    principal = record["principal"]
    if not isinstance(principal, str) or not principal or len(principal) > MAX_PRINCIPAL_CHARS:
        raise InputError(
            f"{where}: principal must be a non-empty string of at most {MAX_PRINCIPAL_CHARS} characters"
        )
    inputs = _numbers(record["inputs"], "inputs", where, width)
    outputs = None
    if record.get("outputs") is not None:
        outputs = _numbers(record["outputs"], "outputs", where, n_classes)
        if outputs.shape[0] != inputs.shape[0]:
            raise InputError(f"{where}: {outputs.shape[0]} output rows for {inputs.shape[0]} input rows")
    strings = {}
    for field in ("model", "version", "source"):
        value = record.get(field) or ""
        if not isinstance(value, str) or len(value) > MAX_PRINCIPAL_CHARS:
            raise InputError(f"{where}: {field} must be a string")
        strings[field] = value
    if not isinstance(record.get("decision", ""), str):
        raise InputError(f"{where}: decision must be a string")
    accepted = record.get("accepted", True)
    if not isinstance(accepted, bool):
        raise InputError(f"{where}: accepted must be true or false")
    return Query(line, float(t), principal, inputs, outputs, accepted=accepted, **strings)


def read_queries(
    path: str | Path,
    *,
    features: int | None = None,
    n_classes: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[Query]:
    """Stream the requests of a ``QUERIES.jsonl`` in time order (re-ordered within a bounded window).

    Args:
        path: the log file.
        features: width every input row must have (the model's feature count; default: the first line's).
        n_classes: width every output row must have, when outputs are logged.
        progress: called as ``(step, bytes_read, file_bytes)`` every few thousand lines.

    Raises:
        InputError: the file is missing or not a regular file, or a line is hostile or malformed (the
            message names the line), or a request is older than the re-order window allows.
    """
    from mlsecops.data._readers import open_data_file

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    heap: list[tuple[float, int, Query]] = []
    held_bytes = 0
    last_time = -math.inf
    last_line = 0
    name = str(p)

    def release() -> Query:
        nonlocal held_bytes, last_time, last_line
        t, _, q = heapq.heappop(heap)
        held_bytes -= q.inputs.nbytes
        last_time, last_line = t, q.line
        return q

    with open_data_file(p) as fh:
        size = p.stat().st_size
        line = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            line += 1
            if len(raw) > MAX_LINE_BYTES and not (len(raw) == MAX_LINE_BYTES + 1 and raw.endswith(b"\n")):
                raise InputError(f"{name} line {line}: longer than {MAX_LINE_BYTES} bytes")
            q = _parse(raw, line, name, features, n_classes)
            if progress is not None and line % 2_000 == 0:
                progress("replay", fh.tell(), size)
            if q is None:
                continue
            if features is None:
                features = q.inputs.shape[1]
            if q.time < last_time:
                raise InputError(
                    f"{name} line {line}: time {q.time} is earlier than line {last_line}'s ({last_time}),"
                    f" which was already replayed (out of order beyond {REORDER_ROWS} requests)"
                )
            heapq.heappush(heap, (q.time, line, q))
            held_bytes += q.inputs.nbytes
            while heap and (len(heap) > REORDER_ROWS or held_bytes > REORDER_BYTES):
                yield release()
    while heap:
        yield release()
    if progress is not None:
        progress("replay", size, size)


def first_query(path: str | Path) -> Query | None:
    """The first request in file order (None for an empty log), read without the re-order window.

    Raises:
        InputError: as :func:`read_queries`, for the lines up to the first request.
    """
    from mlsecops.data._readers import open_data_file

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    with open_data_file(p) as fh:
        for line in range(1, p.stat().st_size + 2):
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return None
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise InputError(f"{p} line {line}: longer than {MAX_LINE_BYTES} bytes")
            query = _parse(raw, line, str(p), None, None)
            if query is not None:
                return query
    return None


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read ``--baseline``: a ``mlsecops data profile`` JSON, or a data file (CSV, Parquet, .npz, .npy).

    A profile gives its joint row sample and exact ranges; a data file is streamed and gives a uniform
    sample of ``BASELINE_SAMPLE_ROWS`` rows of its numeric feature columns (label columns ``label``,
    ``y``, ``target``... left out) with its exact ranges, as ``{"X", "lo", "hi"}``. Use a data file
    when the profile's sample has missing values.

    Raises:
        InputError: unreadable or not a profile / data file.
    """
    from mlsecops.data import DataProfile, iter_chunks
    from mlsecops.data._readers import LABEL_NAMES

    p = Path(path)
    if p.suffix.lower() == ".json":
        return DataProfile.load(p).model_dump(mode="json")
    rng = np.random.default_rng(0)
    keys = np.empty(0)
    sample: np.ndarray | None = None
    lo = hi = None
    skip = {"label", *LABEL_NAMES}
    for chunk in iter_chunks(p):
        cols = [v for k, v in chunk.items() if k not in skip and v.dtype != object]
        if not cols:
            raise InputError(f"{p}: no numeric feature columns")
        x = np.column_stack(cols).astype(np.float64)
        if not np.isfinite(x).all():
            raise InputError(f"{p}: the baseline data holds missing, NaN or infinite values")
        lo = x.min(axis=0) if lo is None else np.minimum(lo, x.min(axis=0))
        hi = x.max(axis=0) if hi is None else np.maximum(hi, x.max(axis=0))
        # Priority sampling: the rows with the smallest random keys form a uniform sample of the file.
        allk = np.concatenate([keys, rng.random(len(x))])
        rows = x if sample is None else np.concatenate([sample, x])
        keep = np.argsort(allk)[:BASELINE_SAMPLE_ROWS]
        keys, sample = allk[keep], rows[keep]
    if sample is None or lo is None or hi is None:
        raise InputError(f"{p}: no data rows")
    return {"X": sample, "lo": lo, "hi": hi}


def _batches(queries: Iterable[Query], model: Any) -> Iterator[tuple[Query, np.ndarray | None]]:
    """The queries with their outputs: logged ones, else one model call per ``BATCH_ROWS`` rows."""
    pending: list[Query] = []
    rows = 0

    def flush() -> Iterator[tuple[Query, np.ndarray | None]]:
        need = [q for q in pending if q.outputs is None]
        computed: np.ndarray | None = None
        if need and model is not None:
            computed = np.asarray(
                model.predict_proba(np.concatenate([q.inputs for q in need])), dtype=np.float64
            )
        at = 0
        for q in pending:
            if q.outputs is not None:
                yield q, q.outputs
            elif computed is not None:
                yield q, computed[at : at + len(q.inputs)]
                at += len(q.inputs)
            else:
                yield q, None

    for q in queries:
        pending.append(q)
        rows += len(q.inputs)
        if rows >= BATCH_ROWS:
            yield from flush()
            pending, rows = [], 0
    yield from flush()


def _finding(alert: Alert) -> Finding:
    return Finding(
        check=f"monitor.{alert.kind}",
        severity=alert.severity,
        title=f"{alert.kind} suspected: principal {alert.principal!r}"
        if alert.principal
        else f"{alert.kind} on model {alert.model!r}",
        detail=f"raised at the principal's request {alert.query_index} (time {alert.time})",
        artifact=alert.model or None,
        location={"principal": alert.principal, "query_index": alert.query_index},
        evidence=json.loads(json.dumps(alert.evidence, default=str)),
        remediation="Review the principal's traffic; a playbook can throttle, block or switch it to label-only outputs.",
        atlas=_ATLAS.get(alert.kind),
    )


def replay(
    queries: Iterable[Query],
    model: Any,
    detectors: list[Detector],
    baseline: dict[str, Any] | None = None,
    *,
    model_name: str = "model",
    subject: str = "queries",
) -> Report:
    """Feed logged requests through ``detectors`` in time order and collect their alerts.

    Args:
        queries: requests in time order (``read_queries``).
        model: the model (an adapter with ``predict_proba``) that recomputes missing outputs; None to
            replay without outputs (output-side signals stay silent).
        detectors: configured detectors (``build_detectors``).
        baseline: the training profile the detectors were built with (named in the report only).
        model_name: model name for requests whose line names none.
        subject: what the report is about (the log's path).

    Returns:
        A ``monitor.replay`` report: findings (one per alert), ``data["alerts"]``, metrics.
    """
    started = utcnow()
    counts: dict[tuple[str, str], int] = {}
    alerts: list[Alert] = []
    costs: list[float] = []
    requests = rows = 0
    for q, outputs in _batches(queries, model):
        key = (q.model or model_name, q.principal)
        counts[key] = counts.get(key, 0) + 1
        obs = Observation(
            time=q.time,
            principal=q.principal,
            model=key[0],
            inputs=q.inputs,
            outputs=outputs,
            version=q.version,
            query_index=counts[key],
            accepted=q.accepted,
            source=q.source,
        )
        t0 = _time.perf_counter()
        for det in detectors:
            alerts.extend(det.observe(obs))
        costs.append(_time.perf_counter() - t0)
        requests += 1
        rows += len(q.inputs)
    metrics: dict[str, float] = {
        "requests": float(requests),
        "rows": float(rows),
        "principals": float(len(counts)),
        "alerts": float(len(alerts)),
    }
    if costs:
        cost = np.asarray(costs) * 1e3
        metrics["detector_ms_p50"] = round(float(np.percentile(cost, 50)), 4)
        metrics["detector_ms_p99"] = round(float(np.percentile(cost, 99)), 4)
    per_detector: dict[str, Any] = {}
    for det in detectors:
        m = getattr(det, "metrics", None)
        values = m() if callable(m) else {}
        per_detector[det.name] = {k: float(v) for k, v in values.items()}
        for k, v in values.items():
            metrics[f"{det.name}.{k}"] = float(v)
    findings = [_finding(a) for a in alerts]
    if not detectors:
        findings.append(
            Finding(
                check="monitor.replay",
                severity=Severity.INFO,
                title="no detector ran",
                detail="the policy disabled monitoring, or no detector could run without a baseline",
            )
        )
    data: dict[str, Any] = {
        "alerts": [a.to_json() for a in alerts],
        "detectors": per_detector,
        "baseline": baseline is not None,
    }
    return Report(
        subject=subject,
        kind="monitor.replay",
        started=started,
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="alerts" if alerts else "clean",
        data=json.loads(json.dumps(data, default=str)),
    )
