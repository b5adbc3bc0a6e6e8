"""Who is looking at the dashboard: log-in with workspace identities, server-side sessions, CSRF.

Credentials are checked by the guard's own ``runtime.auth.Authenticator`` (workspace API keys with
their salted scrypt and key cache, and, when a guard policy is given, its JWT settings), so the
dashboard and the guard accept and refuse exactly the same credentials.

A log-in creates a server-side session: a random 256-bit token goes to the browser in a cookie
(HttpOnly, SameSite=Strict, Secure over TLS, with an expiry) and only its SHA-256 is kept here, so a
memory dump does not yield usable cookies. Each session has its own CSRF token, which every form
posts back and which is compared in constant time. Sessions live in this process only (the dashboard
runs one process): a restart logs everyone out, which is the safe direction.

Revocation: every request reads the workspace's ``access_revision`` row (one primary-key SELECT); when
the ``identity`` counter moved since a session was checked, an API-key session's key is re-read and
the session ends if the key was revoked or its user disabled or changed role.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from mlsecops.core.errors import WorkspaceError
from mlsecops.monitor.alerts import ACK_ROLES as ALERT_ACK_ROLES
from mlsecops.registry import Role, key_states
from mlsecops.runtime.auth import Authenticator
from mlsecops.runtime.controls import AccessWatch
from mlsecops.runtime.errors import Unavailable
from mlsecops.runtime.policy import AuthPolicy
from mlsecops.store import Workspace

__all__ = [
    "ACK_ROLES",
    "FAILED_LOGINS_PER_WINDOW",
    "FAILED_LOGIN_WINDOW_S",
    "SESSION_TTL_S",
    "UI_ROLES",
    "FailedLogins",
    "SessionStore",
    "UiIdentity",
    "UiSession",
]

SESSION_TTL_S = 8 * 3600.0
"""A session ends this long after log-in (a working day), or earlier when its JWT expires."""
MAX_SESSIONS = 10_000
"""Sessions kept at once; beyond that the oldest is dropped (a flood of log-ins cannot exhaust memory)."""

UI_ROLES = frozenset({Role.ADMIN, Role.APPROVER, Role.DEPLOYER, Role.VIEWER})
"""Roles that may use the dashboard; ``client`` may only call models in the guard."""
ACK_ROLES = frozenset(Role(r) for r in ALERT_ACK_ROLES)
"""Roles that may acknowledge alerts: those that act on the registry. A viewer only reads. The same
set as ``mlsecops.monitor.alerts.ACK_ROLES``, which the CLI and the alert store enforce."""

FAILED_LOGIN_WINDOW_S = 60.0
FAILED_LOGINS_PER_WINDOW = 10
"""Failed log-ins from one address within the window before further attempts get 429 (guessing a
256-bit key is hopeless anyway; this keeps a flood from spending the server's scrypt budget)."""
_MAX_TRACKED = 10_000

CredentialKind = Literal["api_key", "jwt"]


@dataclass(frozen=True)
class UiIdentity:
    """An authenticated person or script: the name in the audit trail and the role."""

    name: str
    role: Role
    kind: CredentialKind
    key_id: str | None = None
    """The API key's id (never its secret), to re-check the key when identities change."""

    @property
    def may_ack(self) -> bool:
        """Whether this role may acknowledge alerts."""
        return self.role in ACK_ROLES


@dataclass
class UiSession:
    """One logged-in browser."""

    identity: UiIdentity
    csrf: str
    expires: float
    """``time.time()`` after which the session is over."""
    identity_revision: int | None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def csrf_ok(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())


class FailedLogins:
    """Recent failed log-ins per client address (thread-safe, bounded)."""

    def __init__(
        self, *, window_s: float = FAILED_LOGIN_WINDOW_S, limit: int = FAILED_LOGINS_PER_WINDOW
    ) -> None:
        self.window_s = window_s
        self.limit = limit
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def _recent(self, address: str, now: float) -> list[float]:
        times = [t for t in self._seen.get(address, []) if now - t < self.window_s]
        if times:
            self._seen[address] = times
        else:
            self._seen.pop(address, None)
        return times

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                return None
            return max(1.0, self.window_s - (now - times[0]))

    def failed(self, address: str) -> None:
        """Record one failed attempt."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            times.append(now)
            self._seen[address] = times[-self.limit :]
            if len(self._seen) > _MAX_TRACKED:
                self._seen.pop(next(iter(self._seen)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Credential checks and the sessions of this dashboard process (thread-safe).

    Args:
        ws: the workspace whose identities log in.
        auth: the guard policy's ``auth`` section (API keys, JWTs); anonymous access is never allowed.
        ttl_s: session lifetime.
    """

    def __init__(
        self, ws: Workspace, auth: AuthPolicy | None = None, *, ttl_s: float = SESSION_TTL_S
    ) -> None:
        policy = (auth or AuthPolicy()).model_copy(update={"anonymous": False})
        self._ws = ws
        self._auth = Authenticator(ws, policy)
        self._jwt = policy.jwt is not None
        self._watch = AccessWatch(ws)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sessions: dict[str, UiSession] = {}

    # ------------------------------------------------------------------ credentials

    def identify(self, credential: str) -> UiIdentity:
        """The identity behind an API key or (with a JWT policy) a JWT.

        Raises:
            GuardError: ``Unauthenticated`` for a bad credential, ``Forbidden`` for a blocked
                principal, ``Unavailable`` when the database or identity provider is down.
        """
        credential = credential.strip()
        principal = self._auth.authenticate(f"Bearer {credential}")
        key_id = None
        if principal.kind == "api_key":
            key_id = credential.split("_", 2)[1]
        kind: CredentialKind = "api_key" if principal.kind == "api_key" else "jwt"
        return UiIdentity(principal.name, principal.role, kind, key_id)

    @staticmethod
    def jwt_expiry(credential: str) -> float | None:
        """The ``exp`` of a JWT already verified by ``identify`` (None for an API key)."""
        if credential.count(".") != 2 or credential.startswith("mlsk_"):
            return None
        import jwt

        claims = jwt.decode(credential, options={"verify_signature": False})
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) else None

    # ------------------------------------------------------------------ sessions

    def create(self, identity: UiIdentity, *, not_after: float | None = None) -> tuple[str, UiSession]:
        """Start a session; returns the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        expires = time.time() + self.ttl_s
        if not_after is not None:
            expires = min(expires, not_after)
        revision = self._watch.read()
        session = UiSession(
            identity=identity,
            csrf=secrets.token_urlsafe(32),
            expires=expires,
            identity_revision=None if revision is None else revision.identity,
        )
        with self._lock:
            self._sessions[_digest(token)] = session
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
        return token, session

    def get(self, token: str | None) -> UiSession | None:
        """The live session of a cookie token, or None (unknown, expired, or its key revoked)."""
        if not token or len(token) > 200:
            return None
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires <= time.time():
                del self._sessions[key]
                session = None
        if session is None:
            return None
        if not self._still_valid(session):
            self.drop(token)
            return None
        return session

    def drop(self, token: str | None) -> UiSession | None:
        """End a session (log-out); returns it, or None when there was none."""
        if not token:
            return None
        with self._lock:
            return self._sessions.pop(_digest(token), None)

    def _still_valid(self, session: UiSession) -> bool:
        """Re-check an API-key session when the workspace's identities changed since it was checked."""
        try:
            revision = self._watch.read()
        except Unavailable:  # the database is down: refuse rather than trust a stale session
            return False
        current = None if revision is None else revision.identity
        if current is not None and current == session.identity_revision:
            return True
        ident = session.identity
        if ident.kind == "api_key" and ident.key_id is not None:
            try:
                with self._ws.session(readonly=True) as s:
                    live = key_states(s, [ident.key_id]).get(ident.key_id)
            except WorkspaceError:
                return False
            if live is None or live != (ident.name, ident.role):
                return False
        with session.lock:
            session.identity_revision = current
        return True

    def close(self) -> None:
        """Release the kept database connections."""
        self._auth.close()
        self._watch.close()
