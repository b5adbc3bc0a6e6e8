"""The tamper-evident audit trail: an append-only, hash-chained table of events.

Every row holds who did what to which subject, when, with JSON details, plus ``prev_hash`` (the hash of
the row before it, 64 zeros for the first) and ``hash = SHA-256(prev_hash + canonical content)``.
The canonical content is the compact, key-sorted JSON of ``seq, ts, actor, action, subject, details``,
so ``verify`` detects any edit, deletion, reordering or hand-made insertion: the first row whose
position, back-link or hash does not match is named. A one-row ``audit_head`` table keeps the last
position and hash, written in the same transaction, so deleting the newest rows shows too.

Appends are serialised: SQLite transactions take the write lock first (``BEGIN IMMEDIATE``), PostgreSQL
ones a transaction-scoped advisory lock, so concurrent writers queue up and never fork the chain.
Callers append inside the transaction of the change they record, so both land or neither does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mlsecops.core.findings import utcnow
from mlsecops.store.models import AuditEvent, AuditHead

__all__ = ["GENESIS", "ChainStatus", "append", "canonical_json", "event_hash", "iter_events", "verify"]

GENESIS = "0" * 64
"""``prev_hash`` of the first event."""

_PG_LOCK_KEY = 0x6D6C736563  # "mlsec": one advisory-lock key for audit appends


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON: the bytes that are hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    prev_hash: str, *, seq: int, ts: str, actor: str, action: str, subject: str, details: str
) -> str:
    """SHA-256 of the previous hash plus the canonical content of one event."""
    content = canonical_json(
        {"seq": seq, "ts": ts, "actor": actor, "action": action, "subject": subject, "details": details}
    )
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    # SQLite: the write transaction began with BEGIN IMMEDIATE and already holds the write lock.


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    when: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain within the caller's transaction.

    Args:
        session: the session of the change being recorded; the event commits or rolls back with it.
        actor: who acted (user name, API key owner, ``cli``).
        action: dotted verb, e.g. ``registry.promote``.
        subject: what it acted on, e.g. ``fraud-model@3``.
        details: small JSON-able facts; never secrets.
        when: event time (UTC); now by default.

    Returns:
        The new event row.
    """
    _lock(session)
    head = session.get(AuditHead, 1)
    prev_seq, prev_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    seq = prev_seq + 1
    ts = (when or utcnow()).astimezone(dt.UTC).isoformat(timespec="microseconds")
    details_text = canonical_json(dict(details or {}))
    digest = event_hash(
        prev_hash, seq=seq, ts=ts, actor=actor, action=action, subject=subject, details=details_text
    )
    row = AuditEvent(
        seq=seq,
        ts=ts,
        actor=actor,
        action=action,
        subject=subject,
        details=details_text,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(row)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=digest))
    else:
        head.seq, head.hash = seq, digest
    session.flush()
    return row


@dataclass(frozen=True)
class ChainStatus:
    """Outcome of ``verify``."""

    ok: bool
    """Whether the whole chain is intact."""
    events: int
    """Number of events read."""
    bad_seq: int | None = None
    """Position of the first bad event (or of the head, when only the tail is missing)."""
    reason: str = ""
    """What was wrong there."""


def verify(session: Session, *, batch: int = 5000) -> ChainStatus:
    """Walk the chain from the start and report the first event that does not check out."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for row in session.execute(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    ).scalars():
        count += 1
        if row.seq != expected_seq:
            why = "missing" if row.seq > expected_seq else "duplicated"
            return ChainStatus(False, count, row.seq, f"event {expected_seq} is {why} before event {row.seq}")
        if row.prev_hash != expected_prev:
            return ChainStatus(False, count, row.seq, "its prev_hash does not match the event before it")
        digest = event_hash(
            row.prev_hash,
            seq=row.seq,
            ts=row.ts,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            details=row.details,
        )
        if digest != row.hash:
            return ChainStatus(False, count, row.seq, "its content does not match its hash (edited)")
        expected_prev, expected_seq = row.hash, row.seq + 1
    head = session.get(AuditHead, 1)
    last_seq = expected_seq - 1
    if head is None:
        if count:
            return ChainStatus(False, count, last_seq, "the chain head record is missing")
        return ChainStatus(True, 0)
    if head.seq != last_seq or head.hash != expected_prev:
        return ChainStatus(
            False,
            count,
            head.seq,
            f"the head names event {head.seq} but the chain ends at event {last_seq} (events deleted)",
        )
    return ChainStatus(True, count)


def iter_events(
    session: Session,
    *,
    subject: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
) -> Iterator[AuditEvent]:
    """Events in chain order, filtered; ``action`` ending in ``*`` matches a prefix."""
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    if action is not None:
        if action.endswith("*"):
            query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.ts >= since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    if until is not None:
        query = query.where(AuditEvent.ts <= until.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    if limit is not None:
        query = query.limit(limit)
    yield from session.execute(query).scalars()
