"""Quarantine of logged inputs: a principal's or a source's requests kept apart from retraining data.

``quarantine(...)`` records a range (a principal or a source, one model or all, from a start time,
up to an end time or open-ended) with its audit event (``runtime.quarantine``) in one transaction, and
writes the decision-log rows it already covers apart, to ``<workspace>/quarantine/q-<id>.jsonl``
(mode 0600, the replay format of ``mlsecops monitor replay``), so the evidence outlives the log's
retention. The rows stay in the decision log: what changes is that exports for retraining leave out
every row a range covers, including rows logged after the range was set while it is open-ended.

An exporter loads the ranges once (``QuarantineFilter.load(ws)``) and asks it per row:
``quarantined(principal, source, model, time_s)``; ``is_quarantined(ws, ...)`` asks for one request.
``export_for_training(...)`` is the decision log's export (``runtime.decisions.export_jsonl``) with
the quarantined requests left out: the data a retraining pipeline may take. The plain export keeps
them (a replay of an incident needs the attacker's queries). ``release(...)`` ends a range (audited);
released ranges no longer filter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import func, select

from mlsecops.core.errors import InputError
from mlsecops.core.severity import utcnow
from mlsecops.monitor._alert_tables import QuarantineRange
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.store import Workspace, audit

__all__ = [
    "MAX_COPIED_ROWS",
    "QuarantineFilter",
    "QuarantineInfo",
    "count_covered",
    "export_for_training",
    "is_quarantined",
    "list_quarantines",
    "quarantine",
    "release",
]

MAX_COPIED_ROWS = 200_000
"""Most logged rows copied apart by one quarantine (the file stays bounded; the filter covers all)."""
_PAGE = 1_000
"""Rows read per round trip while copying."""

Scope = Literal["principal", "source"]


@dataclass(frozen=True)
class QuarantineInfo:
    """A quarantine range and what setting it wrote apart."""

    id: int
    scope: Scope
    value: str
    model: str
    """Empty: every model."""
    start_time: float | None
    end_time: float | None
    copied: int
    """Logged rows written apart when it was set."""
    path: str | None
    """The file they were written to (None when none were logged yet)."""

    def to_json(self) -> dict[str, Any]:
        """JSON form (incident details)."""
        return {
            "id": self.id,
            "scope": self.scope,
            "value": self.value,
            "model": self.model,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "copied": self.copied,
            "path": self.path,
        }


def _covers(q: Any, scope: Scope, value: str, model: str, start: float | None, end: float | None) -> Any:
    """The decision-log rows a range covers, as a WHERE clause."""
    column = DecisionRecord.principal if scope == "principal" else DecisionRecord.source
    clause = column == value
    if model:
        clause = clause & (DecisionRecord.model == model)
    if start is not None:
        clause = clause & (DecisionRecord.ts_us >= round(start * 1e6))
    if end is not None:
        clause = clause & (DecisionRecord.ts_us <= round(end * 1e6))
    return q.where(clause)


def _check(scope: str, value: str, start: float | None, end: float | None) -> Scope:
    if scope not in ("principal", "source"):
        raise InputError(f"quarantine scope must be principal or source; got {scope!r}")
    if not value or len(value) > 200:
        raise InputError(f"a quarantined {scope} must be 1-200 characters")
    if start is not None and end is not None and end < start:
        raise InputError("a quarantine range must end after it starts")
    return "principal" if scope == "principal" else "source"


def count_covered(
    ws: Workspace,
    *,
    scope: str,
    value: str,
    model: str = "",
    start: float | None = None,
    end: float | None = None,
) -> int:
    """How many logged requests a range would cover now (read only; for dry runs)."""
    checked = _check(scope, value, start, end)
    with ws.session(readonly=True) as s:
        return int(
            s.execute(
                _covers(select(func.count(DecisionRecord.id)), checked, value, model, start, end)
            ).scalar_one()
        )


def quarantine(
    ws: Workspace,
    *,
    scope: str,
    value: str,
    reason: str,
    actor: str,
    model: str = "",
    start: float | None = None,
    end: float | None = None,
    alert_id: int | None = None,
    incident_id: int | None = None,
) -> QuarantineInfo:
    """Quarantine the logged inputs of a principal or source (see the module docstring).

    Args:
        ws: The workspace.
        scope: ``principal`` or ``source``.
        value: The principal or source name.
        reason: Why (into the audit trail).
        actor: Who.
        model: Only this model's requests ("" for every model).
        start: From this Unix time (None: from the first logged request).
        end: Up to this Unix time (None: open-ended, later requests too).
        alert_id: The alert that caused it, if any.
        incident_id: The incident it is part of, if any.

    Raises:
        InputError: a bad scope, value or range, or the copy cannot be written.
    """
    checked = _check(scope, value, start, end)
    reason = reason.strip()[:500] or "quarantined"
    with ws.session() as s:
        row = QuarantineRange(
            scope=checked,
            value=value,
            model=model,
            start_time=start,
            end_time=end,
            reason=reason,
            alert_id=alert_id,
            incident_id=incident_id,
            created=utcnow().isoformat(timespec="microseconds"),
            created_by=actor[:200],
        )
        s.add(row)
        s.flush()
        qid = row.id
        path, copied = _write_apart(ws, s, qid, checked, value, model, start, end)
        audit.append(
            s,
            actor=actor,
            action="runtime.quarantine",
            subject=f"{checked}:{value}",
            details={
                "quarantine_id": qid,
                "model": model,
                "start_time": start,
                "end_time": end,
                "reason": reason,
                "copied": copied,
                **({"alert_id": alert_id} if alert_id is not None else {}),
                **({"incident_id": incident_id} if incident_id is not None else {}),
            },
        )
    return QuarantineInfo(qid, checked, value, model, start, end, copied, path)


def _write_apart(
    ws: Workspace,
    s: Any,
    qid: int,
    scope: Scope,
    value: str,
    model: str,
    start: float | None,
    end: float | None,
) -> tuple[str | None, int]:
    """Copy the covered rows to ``quarantine/q-<id>.jsonl`` (inside the quarantine's transaction, so a
    failed copy leaves no range behind).
    """
    folder = ws.home / "quarantine"
    path = folder / f"q-{qid}.jsonl"
    copied, last = 0, -1
    fh = None
    try:
        while copied < MAX_COPIED_ROWS:
            q = select(
                DecisionRecord.id,
                DecisionRecord.ts_us,
                DecisionRecord.principal,
                DecisionRecord.source,
                DecisionRecord.model,
                DecisionRecord.version,
                DecisionRecord.decision,
                DecisionRecord.input_digest,
                DecisionRecord.inputs,
                DecisionRecord.outputs,
            )
            q = _covers(q, scope, value, model, start, end).where(DecisionRecord.id > last)
            page = s.execute(q.order_by(DecisionRecord.id).limit(min(_PAGE, MAX_COPIED_ROWS - copied))).all()
            if not page:
                break
            if fh is None:
                folder.mkdir(mode=0o700, exist_ok=True)
                fh = os.fdopen(
                    os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8"
                )
            for r in page:
                line: dict[str, Any] = {
                    "time": r.ts_us / 1e6,
                    "principal": r.principal,
                    "source": r.source,
                    "model": r.model,
                    "version": r.version,
                    "decision": r.decision,
                    "input_digest": r.input_digest,
                }
                for key, text in (("inputs", r.inputs), ("outputs", r.outputs)):
                    if text is not None:
                        try:
                            line[key] = json.loads(text)
                        except ValueError:
                            line[f"{key}_unreadable"] = True
                fh.write(json.dumps(line, separators=(", ", ": ")) + "\n")
            copied += len(page)
            last = page[-1].id
    except OSError as err:
        raise InputError(f"cannot write quarantined inputs to {path}: {err.strerror or err}") from err
    finally:
        if fh is not None:
            fh.close()
    return (str(path) if fh is not None else None), copied


def release(ws: Workspace, quarantine_id: int, *, actor: str, reason: str) -> None:
    """End a quarantine range (``runtime.quarantine_release``): exports include its rows again.

    Raises:
        InputError: no such range, or released already.
    """
    with ws.session() as s:
        row = s.get(QuarantineRange, quarantine_id, with_for_update=True)
        if row is None:
            raise InputError(f"no quarantine with id {quarantine_id}")
        if row.released is not None:
            raise InputError(f"quarantine {quarantine_id} was released already")
        row.released, row.released_by = utcnow().isoformat(timespec="microseconds"), actor[:200]
        audit.append(
            s,
            actor=actor,
            action="runtime.quarantine_release",
            subject=f"{row.scope}:{row.value}",
            details={"quarantine_id": quarantine_id, "reason": reason[:500]},
        )


def list_quarantines(ws: Workspace, *, active_only: bool = False) -> list[dict[str, Any]]:
    """Every quarantine range, newest first (``active_only``: not released), with its copy's path."""
    q = select(QuarantineRange).order_by(QuarantineRange.id.desc())
    if active_only:
        q = q.where(QuarantineRange.released.is_(None))
    with ws.session(readonly=True) as s:
        rows = list(s.execute(q).scalars())
    out = []
    for r in rows:
        copy = ws.home / "quarantine" / f"q-{r.id}.jsonl"
        out.append(
            {
                "id": r.id,
                "scope": r.scope,
                "value": r.value,
                "model": r.model,
                "start_time": r.start_time,
                "end_time": r.end_time,
                "reason": r.reason,
                "alert_id": r.alert_id,
                "incident_id": r.incident_id,
                "created": r.created,
                "created_by": r.created_by,
                "released": r.released,
                "released_by": r.released_by,
                "copy": str(copy) if copy.exists() else None,
            }
        )
    return out


@dataclass(frozen=True)
class _Range:
    model: str
    start: float | None
    end: float | None

    def covers(self, model: str, time_s: float) -> bool:
        return (
            (not self.model or self.model == model)
            and (self.start is None or time_s >= self.start)
            and (self.end is None or time_s <= self.end)
        )


class QuarantineFilter:
    """The active ranges, loaded once: ``f(principal, source, model, time_s)`` says whether a logged
    request is quarantined (an exporter calls it per row).
    """

    def __init__(self, ranges: list[QuarantineRange]) -> None:
        self._by: dict[tuple[str, str], list[_Range]] = {}
        for r in ranges:
            self._by.setdefault((r.scope, r.value), []).append(_Range(r.model, r.start_time, r.end_time))

    @classmethod
    def load(cls, ws: Workspace) -> QuarantineFilter:
        """The workspace's unreleased ranges."""
        with ws.session(readonly=True) as s:
            rows = list(
                s.execute(select(QuarantineRange).where(QuarantineRange.released.is_(None))).scalars()
            )
        return cls(rows)

    def __bool__(self) -> bool:
        return bool(self._by)

    def __call__(self, principal: str, source: str, model: str, time_s: float) -> bool:
        """Whether a request of ``principal`` (from ``source``) to ``model`` at ``time_s`` is quarantined."""
        for key in (("principal", principal), ("source", source)):
            if key[1] and any(r.covers(model, time_s) for r in self._by.get(key, ())):
                return True
        return False


def is_quarantined(ws: Workspace, *, principal: str, source: str = "", model: str, time_s: float) -> bool:
    """Whether one logged request falls in an active quarantine range."""
    return QuarantineFilter.load(ws)(principal, source, model, time_s)


class _Filtered:
    """A text stream that passes on the export's lines except the quarantined ones."""

    def __init__(self, out: IO[str], quarantined: QuarantineFilter) -> None:
        self.out = out
        self.quarantined = quarantined
        self.left_out = 0

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            row = json.loads(line)
            who, source = str(row.get("principal", "")), str(row.get("source", ""))
            if self.quarantined(who, source, str(row.get("model", "")), float(row["time"])):
                self.left_out += 1
            else:
                self.out.write(line)
        return len(text)


def export_for_training(ws: Workspace, model: str, out: Path | IO[str], **options: Any) -> tuple[Any, int]:
    """``export_jsonl`` of ``model`` without the quarantined requests; returns its result (counting
    the lines written before filtering) and how many lines were left out.

    Args:
        ws: The workspace.
        model: Model name.
        out: A path (written with mode 0600) or an open text stream.
        **options: ``since``, ``until``, ``version``, ``include_rejected``, as ``export_jsonl`` takes them.

    Raises:
        InputError: the output file cannot be written.
    """
    from mlsecops.runtime.decisions import export_jsonl

    quarantined = QuarantineFilter.load(ws)
    if isinstance(out, Path):
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as err:
            raise InputError(f"cannot write {out}: {err.strerror or err}") from err
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            filtered = _Filtered(fh, quarantined)
            return export_jsonl(ws, model, filtered, **options), filtered.left_out  # type: ignore[arg-type]
    filtered = _Filtered(out, quarantined)
    return export_jsonl(ws, model, filtered, **options), filtered.left_out  # type: ignore[arg-type]
