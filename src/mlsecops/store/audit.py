"""The tamper-evident audit trail: an append-only, hash-chained table of events.

Every row holds who did what to which subject, when, with JSON details, plus ``prev_hash`` (the hash of
the row before it, 64 zeros for the first) and ``hash = SHA-256(prev_hash + canonical content)``.
The canonical content is the compact, key-sorted JSON of ``seq, ts, actor, action, subject, details``,
so ``verify`` detects any edit, deletion, reordering or hand-made insertion: the first row whose
position, back-link or hash does not match is named. Event 1 is always ``workspace.init``, written in
the transaction that creates the schema, so an empty trail in a workspace is itself tampering.

The one-row ``audit_head`` table keeps the last position (the event count) and hash, sealed with
HMAC-SHA256 under a key kept in the workspace's ``keys/`` directory, not in the database
(``store._seal``). Someone who can write the database but not those files therefore cannot make a
valid head for a chain with its newest events deleted, or for a rewritten or replaced one; and an
append checks the seal before extending the head, so a legitimate event never re-seals a forged
head (the write is refused with ``VerificationError`` until the tampering is dealt with). What a
database-only writer can still do is put back an older state whole (an old copy of the database, or
an old head with the events after it deleted): each host keeps a mark of the newest event it saw
committed, which catches that, and an ``Anchor`` exported elsewhere (``mlsecops audit anchor``)
catches it on any host. Someone who can also write ``keys/`` can rebuild everything; only anchors
kept out of their reach show what they changed before the newest anchor.

Appends are serialised: SQLite transactions take the write lock first (``BEGIN IMMEDIATE``), PostgreSQL
ones a transaction-scoped advisory lock, so concurrent writers queue up and never fork the chain.
Callers append inside the transaction of the change they record, so both land or neither does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mlsecops.core.errors import InputError, VerificationError, WorkspaceError
from mlsecops.core.redaction import redact
from mlsecops.core.severity import utcnow
from mlsecops.store._seal import Mark, Seal, head_mac
from mlsecops.store.models import AuditEvent, AuditHead

__all__ = [
    "APPENDED_INFO",
    "GENESIS",
    "INIT_ACTION",
    "SEAL_INFO",
    "Anchor",
    "ChainStatus",
    "append",
    "canonical_json",
    "event_hash",
    "head_unsealed",
    "iter_events",
    "verify",
]

GENESIS = "0" * 64
"""``prev_hash`` of the first event."""

INIT_ACTION = "workspace.init"
"""Action of event 1: every chain starts with the workspace's creation."""

SEAL_INFO = "mlsecops.audit.seal"
"""``Session.info`` key of the ``Seal`` (head key, mark file) that ``Workspace.session`` provides."""
APPENDED_INFO = "mlsecops.audit.appended"
"""``Session.info`` key of the newest event appended in the session, for the mark after commit."""

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


def _seal(session: Session) -> Seal:
    seal = session.info.get(SEAL_INFO)
    if not isinstance(seal, Seal):
        raise WorkspaceError(
            "audit events are written and verified through Workspace.session(), which carries the "
            "workspace's audit key; this session has none"
        )
    return seal


def _redacted(value: Any) -> Any:
    """``value`` with ``core.redact`` applied to every string in it (details are kept for ever)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    when: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain within the caller's transaction and re-seal the head.

    Every string in ``subject`` and ``details`` passes through ``mlsecops.core.redact`` first, so a
    URL with a password or token in it is stored without it.

    Args:
        session: a ``Workspace.session()`` of the change being recorded; the event commits or rolls
            back with it.
        actor: who acted (user name, API key owner, ``cli``).
        action: dotted verb, e.g. ``registry.promote``.
        subject: what it acted on, e.g. ``fraud-model@3``.
        details: small JSON-able facts; never secrets.
        when: event time (UTC); now by default.

    Returns:
        The new event row.

    Raises:
        WorkspaceError: the session carries no audit key (the key file is missing).
        VerificationError: the head was not sealed with the workspace's key (tampered); extending
            it would seal the tampering, so nothing is written.
    """
    seal = _seal(session)
    key = seal.require_key()
    _lock(session)
    head = session.get(AuditHead, 1)
    _check_head(head, seal, key, action)
    prev_seq, prev_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    seq = prev_seq + 1
    ts = (when or utcnow()).astimezone(dt.UTC).isoformat(timespec="microseconds")
    details_text = canonical_json(_redacted(dict(details or {})))
    subject = redact(subject)
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
    mac = head_mac(key, seq, digest)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=digest, mac=mac))
    else:
        head.seq, head.hash, head.mac = seq, digest, mac
    session.flush()
    _fault_pause(action)
    earlier = session.info.get(APPENDED_INFO)
    if isinstance(earlier, Mark) and earlier.seq == prev_seq and earlier.hash == prev_hash:
        # The event extended here is the one this session appended last, under the same lock and a
        # head with a valid seal: that append already found the chain holds this host's mark, and
        # nothing but this session has written since, so the check would read the same rows again.
        session.info[APPENDED_INFO] = Mark(first=earlier.first, seq=seq, hash=digest)
    elif _extends_mark(session, seal, prev_seq):
        first = digest if seq == 1 else _hash_at(session, 1)
        if first is not None:
            session.info[APPENDED_INFO] = Mark(first=first, seq=seq, hash=digest)
    return row


FAULT_PAUSE_ENV = "MLSECOPS_TEST_FAULT_PAUSE"
"""Test-only fault hook: ``ACTION:PATH`` makes an append of ``ACTION`` create ``PATH`` and sleep inside
its transaction (rows flushed, not committed), so fault tests can kill the process there for sure."""


def _fault_pause(action: str) -> None:
    spec = os.environ.get(FAULT_PAUSE_ENV)
    if spec:
        wanted, _, path = spec.partition(":")
        if wanted == action and path:
            with open(path, "x"):  # once: a second append of the action fails loudly instead of pausing
                pass
            time.sleep(120)


def _check_head(head: AuditHead | None, seal: Seal, key: bytes, action: str) -> None:
    """Refuse to extend a head that was not sealed with our key: re-sealing it would launder it.

    Raises:
        VerificationError: the head is missing (after the first event), re-typed or its MAC is wrong.
    """
    advice = "run `mlsecops audit verify` and investigate before writing to this workspace"
    if head is None:
        if action != INIT_ACTION:
            raise VerificationError(
                f"the audit head record is missing: the trail was tampered with; {advice}"
            )
        return
    stored: Any = head  # values as stored: someone may have re-typed the columns
    seq, digest, mac = stored.seq, stored.hash, stored.mac
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise VerificationError(f"the audit head record was re-typed: the trail was tampered with; {advice}")
    if mac is None and seal.accept_unsealed:
        return
    if not isinstance(mac, str) or not hmac.compare_digest(mac, head_mac(key, seq, digest)):
        raise VerificationError(
            f"the audit head does not carry a valid seal (MAC): the trail was tampered with; {advice}"
        )


def _hash_at(session: Session, seq: int) -> str | None:
    found = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == seq)).scalar_one_or_none()
    return found if isinstance(found, str) else None


def _extends_mark(session: Session, seal: Seal, prev_seq: int) -> bool:
    """Whether the chain still holds this host's mark, so moving the mark forward hides nothing."""
    try:
        mark = seal.read_mark()
    except WorkspaceError:
        return False
    if mark is None:
        return True
    return (
        mark.seq <= prev_seq
        and _hash_at(session, mark.seq) == mark.hash
        and (_hash_at(session, 1) == mark.first)
    )


@dataclass(frozen=True)
class Anchor:
    """A position and hash of the chain kept somewhere the workspace's writers cannot reach."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Read ``SEQ:HASH`` as ``mlsecops audit anchor`` prints it.

        Raises:
            InputError: not that shape.
        """
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or int(seq) < 1 or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
            raise InputError(
                f"an anchor is SEQ:HASH as `mlsecops audit anchor` prints it "
                f"(e.g. 12:{'ab' * 32}); got {text[:80]!r}"
            )
        return cls(int(seq), digest)


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
    head: Anchor | None = None
    """The last event's position and hash when the chain is intact: what ``audit anchor`` exports."""


_TEXT_COLUMNS = ("ts", "actor", "action", "subject", "details", "prev_hash", "hash")


def _retyped(row: Any) -> str | None:
    """Which column of an event row holds a value of the wrong type (someone re-typed it), if any."""
    if not isinstance(row.seq, int) or isinstance(row.seq, bool):
        return "seq"
    return next((c for c in _TEXT_COLUMNS if not isinstance(getattr(row, c), str)), None)


def verify(session: Session, *, anchors: Sequence[Anchor] = (), batch: int = 5000) -> ChainStatus:
    """Walk the chain from the start and report the first thing that does not check out.

    Checked: positions 1, 2, 3... without gaps; each back-link and content hash; event 1 is the
    ``workspace.init`` event; the trail is not empty (an initialised workspace always holds its init
    event); the head row names the last event and carries a valid MAC with the workspace's key; this
    host's mark (the newest event it saw committed) and every given ``anchor`` are still in the chain.

    Args:
        session: a ``Workspace.session()`` (it carries the key and the mark).
        anchors: positions and hashes recorded elsewhere (``mlsecops audit anchor``).
        batch: rows fetched per round trip.

    Raises:
        WorkspaceError: the key file is missing, so the head cannot be checked.
    """
    seal = _seal(session)
    key = seal.require_key()
    mark = seal.read_mark()
    wanted = {a.seq: a.hash for a in anchors}
    if mark is not None:
        wanted.setdefault(mark.seq, mark.hash)
    seen: dict[int, str] = {}
    expected_prev, expected_seq, count = GENESIS, 1, 0
    first_hash: str | None = None
    columns = [getattr(AuditEvent, c) for c in ("seq", *_TEXT_COLUMNS)]
    for row in session.execute(select(*columns).order_by(AuditEvent.seq).execution_options(yield_per=batch)):
        count += 1
        column = _retyped(row)
        if column is not None:
            at = row.seq if column != "seq" else expected_seq
            kind = type(getattr(row, column)).__name__
            return ChainStatus(
                False, count, at, f"its {column} column holds a {kind}, not its type (re-typed)"
            )
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
        if row.seq == 1:
            first_hash = row.hash
            if row.action != INIT_ACTION:
                return ChainStatus(
                    False, count, 1, f"the first event is {row.action!r}, not {INIT_ACTION!r} (replaced)"
                )
        if row.seq in wanted:
            seen[row.seq] = row.hash
        expected_prev, expected_seq = row.hash, row.seq + 1
    last_seq = expected_seq - 1
    if count == 0:
        return ChainStatus(
            False,
            0,
            1,
            f"the audit trail is empty, but an initialised workspace always holds its {INIT_ACTION} "
            "event (every event was deleted)",
        )
    head: Any = session.execute(
        select(AuditHead.seq, AuditHead.hash, AuditHead.mac).where(AuditHead.id == 1)
    ).first()
    if head is None:
        return ChainStatus(False, count, last_seq, "the chain head record is missing")
    if (
        not isinstance(head.seq, int)
        or not isinstance(head.hash, str)
        or not isinstance(head.mac, (str, type(None)))
    ):
        return ChainStatus(
            False, count, last_seq, "the chain head record holds values of the wrong type (re-typed)"
        )
    if head.seq != last_seq or head.hash != expected_prev:
        return ChainStatus(
            False,
            count,
            head.seq,
            f"the head names event {head.seq} but the chain ends at event {last_seq} (events deleted)",
        )
    if head.mac is None or not hmac.compare_digest(head.mac, head_mac(key, head.seq, head.hash)):
        return ChainStatus(
            False,
            count,
            head.seq,
            "the head's MAC does not match (made without the workspace's audit key: events were "
            "deleted, rewritten or replaced)",
        )
    if mark is not None and first_hash is not None and mark.first != first_hash:
        return ChainStatus(
            False, count, 1, "event 1 is not the workspace.init event this host recorded (chain replaced)"
        )
    for where, (seq, digest) in [("this host's mark", (m.seq, m.hash)) for m in (mark,) if m] + [
        ("the anchor", (a.seq, a.hash)) for a in anchors
    ]:
        if seen.get(seq) != digest:
            what = "is gone" if seq > last_seq else "holds different content"
            return ChainStatus(
                False,
                count,
                seq,
                f"{where} records event {seq}, which {what} (the chain ends at event {last_seq}: "
                "events deleted or the database restored from an older copy)",
            )
    return ChainStatus(True, count, head=Anchor(last_seq, expected_prev))


def head_unsealed(session: Session) -> bool:
    """Whether the head exists without a MAC (a workspace from before sealing, not yet re-sealed)."""
    head = session.get(AuditHead, 1)
    return head is not None and head.mac is None


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
