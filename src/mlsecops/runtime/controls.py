"""Per-principal controls that response playbooks and admins set, and the guard reads per request.

A principal (a workspace user by name, ``jwt:<sub>``, or ``guard:anonymous``) can be:

- **blocked** (``block_principal``): every request is refused with 403, optionally ``until`` a time;
- **throttled** (``throttle_principal``): its token bucket runs at the given rate and burst (never
  above the policy's), optionally ``until`` a time;
- **label-only** (``set_label_only``): the app answers with class labels instead of scores.

Each change commits together with its audit event (``runtime.principal.*``, with the reason and the
alert that caused it) and a bump of the ``controls`` access revision, so every guard worker that
reads through a ``ControlsView`` applies it from its very next request on: the view keeps what it
read per principal, and drops it all when the revision it polls has moved.

``AccessWatch`` is that poll: one primary-key SELECT of the ``access_revision`` row on a connection
kept for the purpose (autocommit, no pool checkout, no transaction round trips). Measured on SQLite
it costs about 10 microseconds per request (see the report of the change that added it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mlsecops.core.errors import InputError, WorkspaceError
from mlsecops.core.findings import utcnow
from mlsecops.registry import bump_revision, check_principal_name
from mlsecops.runtime._tables import PrincipalControl
from mlsecops.runtime.errors import Unavailable
from mlsecops.store import Workspace, audit

__all__ = [
    "ANONYMOUS",
    "AccessWatch",
    "Controls",
    "ControlsView",
    "Revision",
    "block_principal",
    "controls_for",
    "list_controls",
    "set_label_only",
    "throttle_principal",
    "unblock_principal",
    "unthrottle_principal",
]

ANONYMOUS = "guard:anonymous"
"""The one principal of unauthenticated calls (only when the policy allows them); no user or JWT
principal can have this name (user names have no ':', JWT principals start with ``jwt:``)."""
MAX_REASON_CHARS = 500
"""A reason is a sentence for the audit trail, not a document."""
CONTROLS_CACHE_SIZE = 100_000
"""Principals whose controls a view keeps in memory (least recently used beyond that are re-read)."""
MAX_THROTTLE_RPS = 1e6
_REVISION_SQL = 'SELECT "identity", "grants", "controls" FROM access_revision WHERE id = 1'


class Revision(NamedTuple):
    """The access revision counters (``registry._revision``)."""

    identity: int
    grants: int
    controls: int


class AccessWatch:
    """Reads the access revision row, cheaply enough to do it on every request.

    One DBAPI connection is kept (in autocommit, so the SELECT needs no BEGIN/COMMIT round trips)
    and shared under a lock; a broken connection is replaced once, then ``Unavailable`` is raised.
    """

    def __init__(self, ws: Workspace) -> None:
        self._engine = ws.engine
        self._sqlite = make_url(ws.url).get_backend_name() == "sqlite"
        self._lock = threading.Lock()
        self._conn: Any = None
        # the raw connection raises the driver's own errors (psycopg.OperationalError when the server
        # restarted), not SQLAlchemy's: without them here a broken connection was never replaced
        self._driver_error: type[Exception] = getattr(ws.engine.dialect.dbapi, "Error", sqlite3.Error)

    def read(self) -> Revision | None:
        """The current counters (None when the row is missing: then nothing may be cached).

        Raises:
            Unavailable: the workspace database cannot be reached.
        """
        with self._lock:
            for attempt in (0, 1):
                try:
                    if self._conn is None:
                        self._conn = self._open()
                    cursor = self._conn.cursor()
                    try:
                        cursor.execute(_REVISION_SQL)
                        row = cursor.fetchone()
                    finally:
                        cursor.close()
                    return None if row is None else Revision(int(row[0]), int(row[1]), int(row[2]))
                except (DBAPIError, SQLAlchemyError, OSError, sqlite3.Error, self._driver_error) as err:
                    self._drop()
                    if attempt:
                        raise Unavailable("the workspace database is unavailable") from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> Any:
        conn = self._engine.raw_connection()
        driver: Any = conn.driver_connection
        if not self._sqlite and hasattr(driver, "autocommit"):
            driver.autocommit = True  # our SQLite connections are in autocommit already (store)
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close too
                self._conn.invalidate()
            self._conn = None

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            self._drop()


@dataclass(frozen=True)
class Controls:
    """What is imposed on one principal (the default: nothing)."""

    principal: str
    blocked: bool = False
    block_until: dt.datetime | None = None
    block_reason: str = ""
    throttle_rps: float | None = None
    throttle_burst: int | None = None
    throttle_until: dt.datetime | None = None
    label_only: bool = False

    def is_blocked(self, now: dt.datetime | None = None) -> bool:
        """Whether the block holds at ``now`` (a block with ``until`` lapses by itself)."""
        if not self.blocked:
            return False
        return self.block_until is None or (now or utcnow()) < self.block_until

    def throttle(self, now: dt.datetime | None = None) -> tuple[float, int] | None:
        """``(requests_per_second, burst)`` while throttled at ``now``, else None."""
        if self.throttle_rps is None or self.throttle_burst is None:
            return None
        if self.throttle_until is not None and (now or utcnow()) >= self.throttle_until:
            return None
        return self.throttle_rps, self.throttle_burst

    def to_json(self) -> dict[str, object]:
        """JSON-able form (times as ISO 8601)."""

        def iso(t: dt.datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "principal": self.principal,
            "blocked": self.is_blocked(),
            "block_until": iso(self.block_until),
            "block_reason": self.block_reason,
            "throttle": self.throttle(),
            "throttle_until": iso(self.throttle_until),
            "label_only": self.label_only,
        }


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _from_row(row: PrincipalControl) -> Controls:
    return Controls(
        principal=row.principal,
        blocked=bool(row.blocked),
        block_until=_time(row.block_until),
        block_reason=row.block_reason,
        throttle_rps=row.throttle_rps,
        throttle_burst=row.throttle_burst,
        throttle_until=_time(row.throttle_until),
        label_only=bool(row.label_only),
    )


def _principal(principal: str) -> str:
    return principal if principal == ANONYMOUS else check_principal_name(principal, wildcard=False)


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InputError("a reason is required (it goes into the audit trail)")
    return reason[:MAX_REASON_CHARS]


def _until(until: dt.datetime | None) -> dt.datetime | None:
    if until is None:
        return None
    if until.tzinfo is None:
        raise InputError("until must be a timezone-aware time (UTC)")
    if until <= utcnow():
        raise InputError(f"until {until.isoformat()} is in the past")
    return until


def _change(
    ws: Workspace,
    principal: str,
    *,
    action: str,
    actor: str,
    reason: str,
    alert_id: str | None,
    details: dict[str, object],
    apply: Callable[[PrincipalControl], None],
) -> None:
    """Upsert the principal's row with ``apply``, bump the revision and audit, in one transaction."""
    principal = _principal(principal)
    reason = _reason(reason)
    with ws.session() as s:
        bump_revision(s, "controls")  # first: on PostgreSQL its row lock serialises access changes
        row = s.get(PrincipalControl, principal, with_for_update=True)
        if row is None:
            row = PrincipalControl(principal=principal, blocked=False, block_reason="", label_only=False)
            s.add(row)
        apply(row)
        row.alert_id = alert_id
        row.updated = utcnow().isoformat(timespec="microseconds")
        row.updated_by = actor[:200]
        audit.append(
            s,
            actor=actor,
            action=action,
            subject=f"principal:{principal}",
            details={"reason": reason, **({"alert_id": alert_id} if alert_id else {}), **details},
        )


def block_principal(
    ws: Workspace,
    principal: str,
    *,
    reason: str,
    actor: str,
    until: dt.datetime | None = None,
    alert_id: str | None = None,
) -> None:
    """Refuse every request of ``principal`` (403) from the next one on, until ``until`` or unblocked.

    The caller decides who may do this (the CLI requires an admin's key; playbooks act as
    themselves); ``actor`` is recorded in the ``runtime.principal.block`` event.

    Raises:
        InputError: a malformed principal, an empty reason or an ``until`` that is naive or past.
    """
    until = _until(until)

    def apply(row: PrincipalControl) -> None:
        row.blocked, row.block_until, row.block_reason = True, _iso(until), _reason(reason)

    _change(
        ws,
        principal,
        action="runtime.principal.block",
        actor=actor,
        reason=reason,
        alert_id=alert_id,
        details={"until": _iso(until)},
        apply=apply,
    )


def unblock_principal(
    ws: Workspace, principal: str, *, reason: str, actor: str, alert_id: str | None = None
) -> None:
    """Lift a block (``runtime.principal.unblock``).

    Raises:
        InputError: a malformed principal or an empty reason.
    """

    def apply(row: PrincipalControl) -> None:
        row.blocked, row.block_until, row.block_reason = False, None, ""

    _change(
        ws,
        principal,
        action="runtime.principal.unblock",
        actor=actor,
        reason=reason,
        alert_id=alert_id,
        details={},
        apply=apply,
    )


def throttle_principal(
    ws: Workspace,
    principal: str,
    *,
    requests_per_second: float,
    burst: int,
    reason: str,
    actor: str,
    until: dt.datetime | None = None,
    alert_id: str | None = None,
) -> None:
    """Slow ``principal`` down to ``requests_per_second`` with ``burst`` (never above the policy's
    rate: the limiter takes the lower of the two), until ``until`` or ``unthrottle_principal``.

    Raises:
        InputError: a malformed principal, an empty reason, a bad rate or burst, a naive/past until.
    """
    if not (0 < requests_per_second <= MAX_THROTTLE_RPS) or not (1 <= burst <= 10**9):
        raise InputError(
            f"throttle needs 0 < requests_per_second <= {MAX_THROTTLE_RPS:g} and 1 <= burst <= 1e9"
        )
    until = _until(until)

    def apply(row: PrincipalControl) -> None:
        row.throttle_rps, row.throttle_burst, row.throttle_until = requests_per_second, burst, _iso(until)

    _change(
        ws,
        principal,
        action="runtime.principal.throttle",
        actor=actor,
        reason=reason,
        alert_id=alert_id,
        details={"requests_per_second": requests_per_second, "burst": burst, "until": _iso(until)},
        apply=apply,
    )


def unthrottle_principal(
    ws: Workspace, principal: str, *, reason: str, actor: str, alert_id: str | None = None
) -> None:
    """Lift a throttle (``runtime.principal.unthrottle``)."""

    def apply(row: PrincipalControl) -> None:
        row.throttle_rps, row.throttle_burst, row.throttle_until = None, None, None

    _change(
        ws,
        principal,
        action="runtime.principal.unthrottle",
        actor=actor,
        reason=reason,
        alert_id=alert_id,
        details={},
        apply=apply,
    )


def set_label_only(
    ws: Workspace,
    principal: str,
    *,
    reason: str,
    actor: str,
    alert_id: str | None = None,
    enabled: bool = True,
) -> None:
    """Switch ``principal``'s answers to class labels only (or back, with ``enabled=False``).

    Raises:
        InputError: a malformed principal or an empty reason.
    """

    def apply(row: PrincipalControl) -> None:
        row.label_only = enabled

    action = "runtime.principal.label_only" if enabled else "runtime.principal.label_only_off"
    _change(
        ws,
        principal,
        action=action,
        actor=actor,
        reason=reason,
        alert_id=alert_id,
        details={},
        apply=apply,
    )


def controls_for(ws: Workspace, principal: str) -> Controls:
    """What is imposed on ``principal`` now, read from the database (uncached; the request path
    uses a ``ControlsView``).
    """
    with ws.session(readonly=True) as s:
        row = s.get(PrincipalControl, principal)
        return Controls(principal) if row is None else _from_row(row)


def list_controls(ws: Workspace) -> list[Controls]:
    """Every principal with a control row (some may have lapsed), by name."""
    with ws.session(readonly=True) as s:
        rows = s.execute(select(PrincipalControl).order_by(PrincipalControl.principal)).scalars()
        return [_from_row(r) for r in rows]


class ControlsView:
    """Cached per-principal controls, dropped whenever the ``controls`` revision moves.

    ``sync()`` polls the revision (one cheap SELECT; ``Authenticator`` does it once per request and
    passes the result to ``refresh``); ``get(principal)`` answers from memory, reading a principal's
    row on first use after a change. Thread-safe.
    """

    def __init__(self, ws: Workspace, *, watch: AccessWatch | None = None) -> None:
        self._ws = ws
        self._watch = watch or AccessWatch(ws)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Controls] = OrderedDict()
        self._revision: int | None = None

    @property
    def watch(self) -> AccessWatch:
        """The revision poll this view uses."""
        return self._watch

    def sync(self) -> Revision | None:
        """Poll the access revision and apply it; returns it for other caches.

        Raises:
            Unavailable: the workspace database cannot be reached.
        """
        revision = self._watch.read()
        self.refresh(revision)
        return revision

    def refresh(self, revision: Revision | None) -> None:
        """Drop what was read before the ``controls`` counter moved (everything, when None)."""
        current = None if revision is None else revision.controls
        with self._lock:
            if current is None or current != self._revision:
                self._cache.clear()
                self._revision = current

    def get(self, principal: str) -> Controls:
        """The controls of ``principal`` (from memory when read since the last change).

        Raises:
            Unavailable: the workspace database cannot be reached.
        """
        with self._lock:
            hit = self._cache.get(principal)
            if hit is not None:
                self._cache.move_to_end(principal)
                return hit
            stamp = self._revision
        try:
            found = controls_for(self._ws, principal)
        except WorkspaceError as err:
            raise Unavailable("the workspace database is unavailable") from err
        with self._lock:
            # Keep it only if no change was seen while reading (else it may predate that change).
            if stamp is not None and stamp == self._revision:
                self._cache[principal] = found
                if len(self._cache) > CONTROLS_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return found
